"""Where the statistics engine's batches run: in this process (local) or on a Ray cluster (ray).

The backend changes where a batch is computed, never what: the batches are planned here as for
the local backend (length-bucketed token batches, question batches with their own seeds), each
one is computed by the same function (`work`), and its rows go into the same cache shards, written
by this process as results arrive. So a Ray run and a local run share a cache and resume each
other, and give the same tables.

Under Ray, batches run through Ray Data (`map_batches` over an actor pool of `num_workers`
actors, one batch per call); each actor loads the student once, from its name or path (or, for a
student built in memory, from a pickled copy), and checks that its fingerprint is the driver's.
Ray is imported only when the ray backend is chosen.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from dmc.settings import check, setting
from dmc.stats.cache import StatsCache, claimed
from dmc.students.loading import builtin_students, load_student

T = TypeVar("T")

# work(student, items of one batch, settings) -> the batch's result (picklable)
Work = Callable[[Any, list, Any], Any]


@dataclass(frozen=True)
class BackendSettings:
    """Where statistics, attempts and pilots run. Throughput only: never part of a cache key."""

    backend: str = setting("local", "Where batches and pilots run: local (this process) or ray (a Ray cluster).",
                           result=False, choices=("local", "ray"))
    ray_address: str | None = setting(None, "Ray cluster to join (`auto`: the one `ray start` runs here; "
                                      "default: start a local cluster).", result=False)
    num_workers: int = setting(2, "Ray: actors scoring at once (each loads the student once).", result=False, min=1)
    worker_cpus: float = setting(1.0, "Ray: CPUs per worker (its torch threads).", result=False, min=0.0)
    worker_gpus: float = setting(0.0, "Ray: GPUs per worker (> 0 puts the student on cuda; pilots get it as "
                                 "num_gpus).", result=False, min=0.0)

    def __post_init__(self) -> None:
        check(self)

    @property
    def is_ray(self) -> bool:
        return self.backend == "ray"


def init_ray(backend: BackendSettings):
    """The ray module, connected to `backend.ray_address` (or a local cluster started now) unless
    this process is connected already."""
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray needs Ray: pip install 'dmc[ray]' (or choose --backend local)") from None

    if not ray.is_initialized():
        try:
            ray.init(address=backend.ray_address, include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True)
        except ConnectionError as e:  # an unreachable --ray-address is the user's to fix
            raise ValueError(f"--ray-address {backend.ray_address}: {e}") from None
    return ray


@dataclass(frozen=True)
class StudentRef:
    """How a worker gets the driver's student: by spec (name or path) or as a pickled copy."""

    spec: str | None
    dtype: str
    fingerprint: str
    blob: Any = None  # a Ray object ref of the pickled student when there is no spec

    def load(self, device: str) -> Any:
        if self.spec is None:
            student = pickle.loads(self.blob)
            student.model.to(device)
        else:
            student = load_student(self.spec, dtype=self.dtype, device=device)
        if student.fingerprint != self.fingerprint:
            raise RuntimeError(f"a Ray worker loaded student {self.spec!r} with fingerprint {student.fingerprint}, "
                               f"not the driver's {self.fingerprint}: the workers must see the same files")
        return student


def student_ref(student: Any, ray: Any) -> StudentRef:
    dtype = str(next(student.model.parameters()).dtype).removeprefix("torch.")
    name, source = getattr(student, "name", None), getattr(student, "source", None)
    spec = name if name in builtin_students() else source
    if spec is not None:
        return StudentRef(spec, dtype, student.fingerprint)
    return StudentRef(None, dtype, student.fingerprint, ray.put(pickle.dumps(student)))


class _Worker:
    """A Ray Data actor: loads the student once, then runs `work` on one batch per call."""

    def __init__(self, ref: StudentRef, work: Work, settings: Any, cpus: float, gpus: float):
        import ray
        import torch

        torch.set_num_threads(max(1, int(cpus)))
        if ref.spec is None:
            ref = StudentRef(None, ref.dtype, ref.fingerprint, ray.get(ref.blob))
        self.student = ref.load("cuda" if gpus > 0 else "cpu")
        self.work, self.settings = work, settings

    def __call__(self, batch: dict) -> dict:
        out = [pickle.dumps(self.work(self.student, pickle.loads(b), self.settings)) for b in batch["items"]]
        return {"i": batch["i"], "result": out}


def _ray_map(backend: BackendSettings, student: Any, work: Work, settings: Any, batches: list[list],
             progress: bool) -> Iterator[tuple[int, Any]]:
    """(index, result) of `work` on each batch, as the actors finish them."""
    ray = init_ray(backend)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    ds = ray.data.from_items([{"i": i, "items": pickle.dumps(b)} for i, b in enumerate(batches)],
                             override_num_blocks=max(1, len(batches)))
    out = ds.map_batches(_Worker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=backend.num_workers),
                         num_cpus=backend.worker_cpus,
                         num_gpus=backend.worker_gpus or None,
                         fn_constructor_args=(student_ref(student, ray), work, settings, backend.worker_cpus,
                                              backend.worker_gpus))
    for row in out.iter_rows():
        yield int(row["i"]), pickle.loads(row["result"])


def execute(batches: Sequence[T], *, key: Callable[[T], str], needed: Callable[[T], bool],
            compute: Callable[[T], Any], items: Callable[[T], list], student: Any, work: Work, settings: Any,
            cache: StatsCache | None, table: str, fingerprint: str, settings_hash: str,
            backend: BackendSettings | None = None, progress: bool = False) -> Iterator[tuple[T, Any]]:
    """Yield (batch, result) for each batch, holding the batch's claim in `cache` while the caller
    writes its shard (dmc.stats.cache.claimed); result is None when `needed(batch)` says other
    processes finished it meanwhile.

    local: each batch is computed here, in order, by `compute(batch)`. ray: every batch this
    process can claim now runs remotely as `work(student, items(batch), settings)` (the same
    computation); batches claimed elsewhere are then waited for and done locally like the
    local backend's.
    """
    if backend is None or not backend.is_ray:
        for b in claimed(cache, table, fingerprint, settings_hash, batches, key):
            yield b, compute(b) if needed(b) else None
        return
    held: dict[int, Any] = {}
    remote: list[T] = []
    deferred: list[T] = []
    try:
        for b in batches:
            c = cache.claim(table, fingerprint, settings_hash, key(b)) if cache is not None else None
            if cache is not None and c is None:
                deferred.append(b)
            elif needed(b):
                held[len(remote)] = c
                remote.append(b)
            else:
                if c is not None:
                    c.release()
                yield b, None
        if remote:
            for i, result in _ray_map(backend, student, work, settings, [items(b) for b in remote], progress):
                yield remote[i], result
                c = held.pop(i)
                if c is not None:
                    c.release()
    finally:
        for c in held.values():
            if c is not None:
                c.release()
    for b in claimed(cache, table, fingerprint, settings_hash, deferred, key):
        yield b, compute(b) if needed(b) else None
