"""Seeded per-dataset subsampling that picks the same questions across datasets.

Samples are ranked by a hash of (seed, question hash), then sample hash; the first n are kept, in
their original order. Datasets answering the same questions therefore keep the same questions
(comparable scores, and student attempts shared), and the choice does not depend on file order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from dmc.data.schema import Sample


def _key(seed: int, s: Sample) -> tuple[str, str]:
    return hashlib.sha256(f"{seed}|{s.question_hash}".encode()).hexdigest(), s.hash


def subsample(samples: Sequence[Sample], n: int | None, seed: int = 0) -> list[Sample]:
    """At most n samples (all when n is None or >= len), chosen by seed, in original order."""
    if n is None or n >= len(samples):
        return list(samples)
    if n < 0:
        raise ValueError(f"max samples must be >= 0, got {n}")
    keep = set(sorted(range(len(samples)), key=lambda i: _key(seed, samples[i]))[:n])
    return [s for i, s in enumerate(samples) if i in keep]
