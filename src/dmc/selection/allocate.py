"""The split of a budget among datasets, given their mixture weights (pure functions).

The weights themselves come from dmc.selection.weights (shared with the curriculum).
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def water_fill(weights: Mapping[str, float], capacity: Mapping[str, float], budget: float) -> dict[str, float]:
    """Split ``budget`` in proportion to ``weights``, never giving a dataset more than its capacity.

    What a full dataset cannot take goes to the others, in proportion to their weights. When the
    budget exceeds the total capacity of the positively weighted datasets, each gets all it has.
    """
    alloc = {k: 0.0 for k in weights}
    active = {k for k, w in weights.items() if w > 0 and capacity.get(k, 0) > 0}
    remaining = float(budget)
    while active and remaining > 1e-9:
        total_w = sum(weights[k] for k in active)
        share = {k: remaining * weights[k] / total_w for k in active}
        full = {k for k in active if capacity[k] - alloc[k] <= share[k] + 1e-9}
        if not full:
            for k in active:
                alloc[k] += share[k]
            break
        for k in full:
            remaining -= capacity[k] - alloc[k]
            alloc[k] = float(capacity[k])
        active -= full
    return alloc


def round_counts(alloc: Mapping[str, float], capacity: Mapping[str, int], total: int) -> dict[str, int]:
    """Integer counts summing to ``min(total, round(sum(alloc)))`` (largest-remainder rounding).

    ``alloc`` comes from :func:`water_fill`, so it never exceeds a capacity; ties in the remainder
    go to the dataset listed first.
    """
    out = {k: min(int(math.floor(v + 1e-9)), int(capacity[k])) for k, v in alloc.items()}
    target = min(int(total), int(round(sum(alloc.values()))))
    order = sorted(alloc, key=lambda k: -(alloc[k] - out[k]))
    for k in order:
        if sum(out.values()) >= target:
            break
        if out[k] < capacity[k] and alloc[k] - out[k] > 1e-9:
            out[k] += 1
    return out
