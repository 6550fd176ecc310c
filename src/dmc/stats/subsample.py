"""Seeded per-dataset subsampling that picks the same questions across datasets, and the one
seeded pseudo-random ordering of the package.

:func:`seeded_rank` maps a string key and a seed to a rank (the SHA-256 of ``f"{seed}|{key}"``
read as an integer); :func:`seeded_order` sorts items by the rank of their key, then by a
tie-break, then by their position. The order depends on the items' keys, not on where they sit in
a file, and is the same on every platform and Python version (no ``hash()``, no RNG state).

:func:`subsample` keys a sample by its question hash and breaks ties by the sample hash; the first
n are kept, in their original order. Datasets answering the same questions therefore keep the same
questions (comparable scores, and student attempts shared), and the choice does not depend on file
order. The samples `dmc score` draws for a given seed must never change (caches and published
results depend on them): tests/test_ordering.py pins them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from dmc.data.schema import Sample

T = TypeVar("T")


def seeded_rank(key: str, seed: int) -> int:
    """A seeded pseudo-random rank of ``key`` (lower = first): SHA-256 of ``f"{seed}|{key}"`` as an int."""
    return int.from_bytes(hashlib.sha256(f"{seed}|{key}".encode()).digest(), "big")


def seeded_order(items: Iterable[T], key: Callable[[T], str], seed: int,
                 tiebreak: Callable[[T], Any] | None = None) -> list[T]:
    """``items`` sorted by ``seeded_rank(key(item), seed)``, then by ``tiebreak(item)`` when given,
    then by their position (a stable sort)."""
    items = list(items)
    if tiebreak is None:
        return sorted(items, key=lambda x: seeded_rank(key(x), seed))
    return sorted(items, key=lambda x: (seeded_rank(key(x), seed), tiebreak(x)))


def subsample(samples: Sequence[Sample], n: int | None, seed: int = 0) -> list[Sample]:
    """At most n samples (all when n is None or >= len), chosen by seed, in original order."""
    if n is None or n >= len(samples):
        return list(samples)
    if n < 0:
        raise ValueError(f"max samples must be >= 0, got {n}")
    ranked = seeded_order(range(len(samples)), lambda i: samples[i].question_hash, seed,
                          tiebreak=lambda i: samples[i].hash)
    keep = set(ranked[:n])
    return [s for i, s in enumerate(samples) if i in keep]
