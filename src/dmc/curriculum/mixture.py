"""A mixture over candidate datasets and the sampler that draws training rows from it.

The draw for micro-batch `b` is a pure function of `(seed, b, mixture in effect at b)`, so a run
resumed from a checkpoint (which replays the sampler from batch 0, as `Trainer` does when it
skips already-trained batches) draws exactly the rows an uninterrupted run drew.

A mixture update takes effect from the first batch the sampler has not drawn yet. `Trainer`
pre-fetches batches (one optimizer step's worth, plus one batch of look-ahead in accelerate's
data loader), so "the next undrawn batch" is recorded explicitly in the schedule instead of being
inferred from the optimizer step; this makes the boundary identical in an uninterrupted and a
resumed run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Sampler

from dmc.data.schema import CandidateDataset, Sample

# Stream tags keep the dataset-choice and row-permutation random streams independent.
_TAG_CHOICE = 0
_TAG_PERM = 1


def normalize_weights(weights: Sequence[float], names: Sequence[str]) -> np.ndarray:
    """Validate a mixture (finite, non-negative, positive sum) and scale it to sum to 1."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(names),):
        raise ValueError(f"mixture has {w.size} weights for {len(names)} datasets {list(names)}")
    bad = [n for n, x in zip(names, w) if not np.isfinite(x) or x < 0]
    if bad:
        raise ValueError(f"mixture weights must be finite and >= 0; invalid for {bad}: {w.tolist()}")
    total = w.sum()
    if total <= 0:
        raise ValueError(f"mixture weights sum to 0 for datasets {list(names)}")
    return w / total


@dataclass
class MixtureEntry:
    """One mixture in the schedule: in effect from micro-batch `from_batch` on."""

    from_batch: int
    step: int  # optimizer step at which it was decided (0 = before training)
    weights: list[float]
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"from_batch": self.from_batch, "step": self.step, "weights": list(self.weights), "reason": self.reason}


@dataclass
class MixtureSchedule:
    """The history of mixtures over named datasets, plus what the sampler has drawn so far.

    `drawn` is the number of micro-batches the sampler has started in its current pass; an update
    made now takes effect from batch `drawn`. `selections[b]` counts rows per dataset in batch `b`.
    """

    names: list[str]
    entries: list[MixtureEntry] = field(default_factory=list)
    drawn: int = 0
    selections: list[list[int]] = field(default_factory=list)

    def set(self, weights: Sequence[float], *, step: int, reason: str = "") -> MixtureEntry:
        """Record a new mixture, in effect from the next batch the sampler draws."""
        w = normalize_weights(weights, self.names)
        if self.entries and self.drawn < self.entries[-1].from_batch:
            raise RuntimeError(
                f"mixture update at step {step} would start at batch {self.drawn}, before the previous "
                f"update's start batch {self.entries[-1].from_batch}"
            )
        entry = MixtureEntry(from_batch=self.drawn, step=step, weights=w.tolist(), reason=reason)
        if self.entries and self.entries[-1].from_batch == entry.from_batch:
            self.entries[-1] = entry  # nothing was drawn with the previous one: replace it
        else:
            self.entries.append(entry)
        return entry

    @property
    def current(self) -> np.ndarray | None:
        return np.asarray(self.entries[-1].weights) if self.entries else None

    def weights_at(self, batch: int) -> np.ndarray:
        """The mixture in effect for micro-batch `batch`."""
        if not self.entries:
            raise RuntimeError("the mixture schedule is empty: set a mixture before drawing batches")
        chosen = self.entries[0]
        for e in self.entries:
            if e.from_batch <= batch:
                chosen = e
            else:
                break
        return np.asarray(chosen.weights, dtype=np.float64)

    def record_selection(self, batch: int, counts: Sequence[int]) -> None:
        if batch < len(self.selections):
            if list(self.selections[batch]) != list(counts):
                raise RuntimeError(
                    f"replayed batch {batch} drew {list(counts)} rows per dataset, but {list(self.selections[batch])} "
                    "were recorded before: the schedule or the seed changed between runs"
                )
            return
        if batch != len(self.selections):
            raise RuntimeError(f"batch {batch} drawn out of order (recorded {len(self.selections)} batches)")
        self.selections.append([int(c) for c in counts])

    def state_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "entries": [e.to_dict() for e in self.entries],
            "selections": [list(s) for s in self.selections],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["names"]) != list(self.names):
            raise ValueError(f"checkpointed curriculum datasets {state['names']} differ from this run's {self.names}")
        self.entries = [MixtureEntry(**e) for e in state["entries"]]
        self.selections = [list(s) for s in state["selections"]]
        self.drawn = 0


class SampleDataset(Dataset):
    """A map-style torch Dataset of `Sample`s (the collator turns them into tensors)."""

    def __init__(self, samples: Sequence[Sample]):
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]


class PoolDataset(SampleDataset):
    """The candidate datasets of a pool, concatenated; `labels[i]` is row i's dataset index."""

    def __init__(self, pool: Sequence[CandidateDataset]):
        if not pool:
            raise ValueError("the pool has no candidate datasets")
        names = [d.name for d in pool]
        if len(set(names)) != len(names):
            raise ValueError(f"candidate dataset names must be unique, got {names}")
        empty = [d.name for d in pool if len(d) == 0]
        if empty:
            raise ValueError(f"candidate datasets with no samples: {empty}")
        self.names = names
        self.labels: list[int] = []
        samples: list[Sample] = []
        for k, d in enumerate(pool):
            samples.extend(d.samples)
            self.labels.extend([k] * len(d))
        super().__init__(samples)

    def rows_of(self, name: str) -> list[int]:
        k = self.names.index(name)
        return [i for i, lab in enumerate(self.labels) if lab == k]


class MixtureSampler(Sampler[int]):
    """Yields `num_batches * batch_size` row indices; batch `b` follows the schedule's mixture at `b`.
    Rows in `exclude` are never drawn (the dynamic curriculum's held-out probes).

    Within a dataset, rows come from seeded permutations indexed by the global row slot, so a
    dataset that is selected for a long stretch is walked through without repeats (epoch-like),
    while each draw stays a pure function of `(seed, b, mixture)`.
    """

    def __init__(
        self,
        labels: Sequence[int],
        schedule: MixtureSchedule,
        *,
        batch_size: int,
        num_batches: int,
        seed: int,
        exclude: Sequence[int] = (),
    ):
        if batch_size < 1 or num_batches < 1:
            raise ValueError(f"batch_size ({batch_size}) and num_batches ({num_batches}) must be >= 1")
        self.schedule = schedule
        self.batch_size = batch_size
        self.num_batches = num_batches
        self.seed = int(seed)
        n = len(schedule.names)
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= n):
            raise ValueError(f"row labels must lie in [0, {n}) for datasets {schedule.names}")
        drawable = np.ones(len(self.labels), dtype=bool)
        drawable[np.asarray(list(exclude), dtype=np.int64)] = False  # rows held out of training (probes)
        self.rows: list[np.ndarray] = [np.flatnonzero((self.labels == k) & drawable) for k in range(n)]
        self._perm_cache: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def _perm(self, d: int, epoch: int) -> np.ndarray:
        key = (d, epoch)
        if key not in self._perm_cache:
            if len(self._perm_cache) > 4 * len(self.rows):  # keep the cache small on long runs
                self._perm_cache.clear()
            rng = np.random.default_rng([self.seed, _TAG_PERM, d, epoch])
            self._perm_cache[key] = rng.permutation(len(self.rows[d]))
        return self._perm_cache[key]

    def draw(self, batch: int, weights: np.ndarray) -> list[int]:
        """Row indices of micro-batch `batch` under mixture `weights` (pure: no state is read)."""
        available = np.array([len(r) > 0 for r in self.rows])
        if np.any((weights > 0) & ~available):
            empty = [self.schedule.names[k] for k in np.flatnonzero((weights > 0) & ~available)]
            raise ValueError(f"the mixture gives weight to datasets with no training rows: {empty}")
        rng = np.random.default_rng([self.seed, _TAG_CHOICE, batch])
        choices = rng.choice(len(weights), size=self.batch_size, p=weights)
        out: list[int] = []
        for j, d in enumerate(choices):
            rows = self.rows[d]
            slot = batch * self.batch_size + j
            perm = self._perm(int(d), slot // len(rows))
            out.append(int(rows[perm[slot % len(rows)]]))
        return out

    def __iter__(self) -> Iterator[int]:
        self.schedule.drawn = 0
        n = len(self.schedule.names)
        for b in range(self.num_batches):
            weights = self.schedule.weights_at(b)
            self.schedule.drawn = b + 1
            idx = self.draw(b, weights)
            counts = np.bincount(self.labels[idx], minlength=n)
            self.schedule.record_selection(b, counts.tolist())
            yield from idx

