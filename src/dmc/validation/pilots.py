"""Pilot runs with a resumable cache and a process pool.

A pilot is one short training run followed by an evaluation. It is identified by what determines
its outcome (student fingerprint, training-data content hash, eval-set hash, train config, seed,
protocol), hashed into a key; its run directory CACHE/<key>/ holds `result.json`, written
atomically when the pilot finishes. A pilot whose `result.json` exists is never rerun, so a
killed validation resumes where it stopped. Failed pilots are reported (accuracy NaN with the
error) and retried on the next run, never cached as finished.

Pilots run in a `concurrent.futures` process pool (spawn context), each worker with
``torch.set_num_threads(max(1, cores // workers))``; with one worker they run in this process.
With the ray backend (dmc.stats.BackendSettings) each pilot is a Ray task with the backend's
CPUs and GPUs per worker, at most `num_workers` at once; it reads and writes the same cache, which
must then be on a file system every node sees.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import multiprocessing as mp
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from dmc.data.schema import content_hash
from dmc.io import atomic_write_json, atomic_write_text
from dmc.stats.backend import BackendSettings, init_ray
from dmc.validation.progress import PilotBoard, PilotProgress

PILOT_FORMAT = "dmc-pilot-v1"
RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"

# runner(payload, run_dir) -> {"accuracy": float in [0, 1] or NaN, ...extra JSON fields}
Runner = Callable[[dict[str, Any], Path], dict[str, Any]]


@dataclass(frozen=True)
class Pilot:
    """One pilot to run.

    label: shown in the progress display. identity: everything that determines the outcome
    (JSON-serializable); the cache key is its hash. payload: what the runner needs (paths,
    settings; JSON-serializable, picklable). info: copied into the result (dataset, seed ...).
    """

    label: str
    identity: dict[str, Any]
    payload: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return content_hash({"format": PILOT_FORMAT, **self.identity})


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers(cores: int | None = None) -> int:
    """min(2, cores): two small pilots side by side use two cores better than one pilot with two
    threads; more workers would multiply memory for little gain on small machines."""
    return max(1, min(2, cores if cores is not None else available_cores()))


class PilotCache:
    """CACHE/<key>/result.json per finished pilot."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def run_dir(self, key: str) -> Path:
        return self.root / key

    def load(self, key: str) -> dict[str, Any] | None:
        """The finished pilot's result, or None when it has not finished."""
        path = self.run_dir(key) / RESULT_FILE
        if not path.is_file():
            return None
        try:
            res = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{e.lineno}: pilot result is not valid JSON ({e.msg}); delete it to rerun the pilot") from e
        if not isinstance(res, dict) or "accuracy" not in res:
            raise ValueError(f"{path}: pilot result has no 'accuracy' field; delete it to rerun the pilot")
        return res

    def store(self, key: str, result: dict[str, Any]) -> None:
        atomic_write_json(self.run_dir(key) / RESULT_FILE, result)


def _nan_to_none(x: Any) -> Any:
    return None if isinstance(x, float) and math.isnan(x) else x


def _accuracy(x: Any) -> float:
    return float("nan") if x is None else float(x)


def execute_pilot(runner: Runner, pilot: Pilot, cache_root: str, threads: int) -> dict[str, Any]:
    """Run one pilot (in a worker process or in this one) and cache its result when it finished.

    Returns the result dict: status "done" or "failed" (with `error`), accuracy (NaN on failure).
    """
    threads = max(1, int(threads))
    torch = sys.modules.get("torch")
    prev_threads = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(threads)
    else:  # a fresh worker: torch reads this when the runner imports it
        os.environ["OMP_NUM_THREADS"] = str(threads)
    cache = PilotCache(cache_root)
    key = pilot.key
    run_dir = cache.run_dir(key)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    atomic_write_json(run_dir / "pilot.json", {"label": pilot.label, "identity": pilot.identity,
                                               "payload": pilot.payload, "info": pilot.info})
    t0 = time.perf_counter()
    base = {"key": key, "label": pilot.label, **pilot.info}
    try:
        out = dict(runner(dict(pilot.payload), run_dir))
        if "accuracy" not in out:
            raise KeyError(f"pilot runner {getattr(runner, '__name__', runner)!r} returned no 'accuracy' (got {sorted(out)})")
        acc = _accuracy(out.pop("accuracy"))
        if not (math.isnan(acc) or 0.0 <= acc <= 1.0):
            raise ValueError(f"pilot runner returned accuracy {acc!r}, outside [0, 1]")
        result = {**base, **out, "accuracy": acc, "status": "done", "error": None,
                  "seconds": round(time.perf_counter() - t0, 3), "identity": pilot.identity}
        if math.isnan(acc):
            result["accuracy_reason"] = out.get("accuracy_reason") or "no eval question could be graded"
        cache.store(key, {k: _nan_to_none(v) for k, v in result.items()})
        return result
    except Exception as e:  # a failed pilot is reported with its error, never given a default score
        tb = traceback.format_exc()
        atomic_write_text(run_dir / ERROR_FILE, tb)
        return {**base, "accuracy": float("nan"), "status": "failed", "error": f"{type(e).__name__}: {e}",
                "error_file": str(run_dir / ERROR_FILE), "seconds": round(time.perf_counter() - t0, 3)}
    finally:
        if torch is not None and prev_threads is not None:
            torch.set_num_threads(prev_threads)


def _from_cache(res: dict[str, Any], pilot: Pilot) -> dict[str, Any]:
    out = {**res, **pilot.info, "key": pilot.key, "label": pilot.label, "status": "cached"}
    out["accuracy"] = _accuracy(res.get("accuracy"))
    return out


def run_pilots(
    pilots: Sequence[Pilot],
    runner: Runner,
    cache_root: str | Path,
    *,
    workers: int | None = None,
    threads: int | None = None,
    progress: bool = True,
    console: Console | None = None,
    title: str = "pilots",
    backend: BackendSettings | None = None,
) -> list[dict[str, Any]]:
    """Run every pilot that is not cached; returns one result per pilot, in order.

    workers: processes running pilots at once (default :func:`default_workers`); 1 runs them in
    this process. threads: torch threads per worker (default max(1, cores // workers)).
    `runner` must be importable by name (a module-level function) when workers > 1.
    Duplicate pilots (same key) run once. backend: with `backend="ray"`, pilots run as Ray tasks
    instead (:func:`_run_on_ray`; workers and threads then come from the backend's settings).
    """
    cache = PilotCache(cache_root)
    cores = available_cores()
    workers = default_workers(cores) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    threads = max(1, cores // workers) if threads is None else int(threads)

    board = PilotBoard(title)
    results: dict[str, dict[str, Any]] = {}
    todo: list[Pilot] = []
    for p in pilots:
        k = p.key
        if k in board.rows:
            continue
        board.add(k, p.label)
        cached = cache.load(k)
        if cached is not None:
            results[k] = _from_cache(cached, p)
            board.set(k, "cached", accuracy=results[k]["accuracy"], seconds=cached.get("seconds"))
        else:
            todo.append(p)

    def finish(p: Pilot, res: dict[str, Any]) -> None:
        results[p.key] = res
        board.set(p.key, "done" if res["status"] == "done" else "failed", accuracy=res["accuracy"],
                  seconds=res.get("seconds"), note=res.get("error") or "")

    with PilotProgress(board, enabled=progress, console=console) as prog:
        if backend is not None and backend.is_ray and todo:
            _run_on_ray(todo, runner, str(cache.root), backend, board, finish, prog)
        elif workers == 1 or len(todo) <= 1:
            for p in todo:
                board.set(p.key, "running")
                prog.refresh()
                finish(p, execute_pilot(runner, p, str(cache.root), threads))
        else:
            _run_in_pool(todo, runner, str(cache.root), workers, threads, board, finish, prog)
    return [results[p.key] for p in pilots]


def _run_in_pool(todo: list[Pilot], runner: Runner, cache_root: str, workers: int, threads: int,
                 board: PilotBoard, finish: Callable[[Pilot, dict[str, Any]], None], prog: PilotProgress) -> None:
    queue = list(todo)
    ctx = mp.get_context("spawn")  # fork would copy torch's thread pools and locks into the child
    # A broken pool fails every pilot in flight, not only the one whose worker died. Each of them
    # gets one more try, alone (workers=1 from then on): the one that dies again alone is failed.
    retried: set[str] = set()

    def lost(p: Pilot) -> None:
        if p.key in retried:
            finish(p, {"key": p.key, "label": p.label, **p.info, "accuracy": float("nan"),
                       "status": "failed", "seconds": None,
                       "error": "the worker process died (killed or out of memory)"})
        else:
            retried.add(p.key)
            queue.insert(0, p)
            board.set(p.key, "queued")

    while queue:
        running: dict[cf.Future, Pilot] = {}
        broken = False
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        try:
            while (queue or running) and not broken:
                # Keep at most `workers` submitted, so "running" in the display is what really runs.
                while queue and len(running) < workers:
                    p = queue.pop(0)
                    running[pool.submit(execute_pilot, runner, p, cache_root, threads)] = p
                    board.set(p.key, "running")
                done, _ = cf.wait(running, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    p = running.pop(fut)
                    try:
                        finish(p, fut.result())
                    except BrokenProcessPool:
                        broken = True
                        lost(p)
                prog.refresh()
            if broken:
                for p in running.values():  # every in-flight pilot of a broken pool is lost
                    lost(p)
                running.clear()
                workers = 1
        except BaseException:
            # Interrupted (Ctrl-C): stop now; finished pilots are cached, the rest rerun next time.
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=not broken, cancel_futures=True)


def _run_on_ray(todo: list[Pilot], runner: Runner, cache_root: str, backend: BackendSettings, board: PilotBoard,
                finish: Callable[[Pilot, dict[str, Any]], None], prog: PilotProgress) -> None:
    """Each pilot as a Ray task (`execute_pilot`, which caches it when it finishes), at most
    `num_workers` in flight. A task whose worker died fails its pilot (retried on the next run)."""
    ray = init_ray(backend)
    task = ray.remote(num_cpus=backend.worker_cpus, num_gpus=backend.worker_gpus, max_retries=0)(execute_pilot)
    threads = max(1, int(backend.worker_cpus))
    queue = list(todo)
    running: dict[Any, Pilot] = {}
    try:
        while queue or running:
            while queue and len(running) < backend.num_workers:
                p = queue.pop(0)
                running[task.remote(runner, p, cache_root, threads)] = p
                board.set(p.key, "running")
            done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in done:
                p = running.pop(ref)
                try:
                    finish(p, ray.get(ref))
                except ray.exceptions.RayError as e:
                    finish(p, {"key": p.key, "label": p.label, **p.info, "accuracy": float("nan"),
                               "status": "failed", "seconds": None, "error": f"the Ray task failed: {e}"})
            prog.refresh()
    except BaseException:
        # Interrupted: finished pilots are cached; the ones in flight rerun next time.
        for ref in running:
            ray.cancel(ref, force=True)
        raise
