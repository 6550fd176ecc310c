"""The metric interface and registry.

A metric is a pure function of a :class:`~dmc.metrics.context.ScoringContext` (the samples, the
cached token-statistics and attempts tables, and the settings) to per-sample and per-dataset
values. Each declares its name, version, direction and range, and is registered in ``METRICS``
by :func:`register`, so a new metric plugs in without touching the others.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pandas as pd

if TYPE_CHECKING:
    from dmc.metrics.context import ScoringContext
    from dmc.metrics.settings import MetricSettings

Direction = Literal["higher", "lower", "none"]

# What a metric needs computed before it runs; dmc.scoring only runs the costly stages asked for.
NEEDS = ("tokens", "tokens_noq", "attempts", "answers", "grades")


@dataclass
class MetricResult:
    """Output of one metric.

    ``sample_values`` / ``sample_reasons`` are aligned with ``ctx.samples.index``; a reason is a
    string exactly where the value is NaN and None elsewhere. ``dataset_values`` /
    ``dataset_reasons`` are indexed by dataset name. The ``*_extra`` frames carry components
    (aligned the same way) that are reported beside the value.
    """

    sample_values: pd.Series
    sample_reasons: pd.Series
    dataset_values: pd.Series
    dataset_reasons: pd.Series
    sample_extra: pd.DataFrame | None = None
    dataset_extra: pd.DataFrame | None = None


class Metric(ABC):
    """A data-selection score. Subclasses set the class attributes and implement ``compute``."""

    name: str
    version: str
    direction: Direction
    range: tuple[float, float]
    description: str
    needs: frozenset[str] = frozenset()
    # Column holding the per-sample value in the samples table (DMC's per-sample score is m_i).
    sample_column: str | None = None

    def needs_for(self, settings: MetricSettings) -> frozenset[str]:
        """What the metric needs under ``settings`` (a setting may swap one table for another)."""
        return self.needs

    @property
    def column(self) -> str:
        return self.sample_column or self.name

    @abstractmethod
    def compute(self, ctx: ScoringContext) -> MetricResult: ...

    def info(self) -> dict:
        """JSON-serializable declaration, recorded with every score."""
        return {
            "version": self.version,
            "direction": self.direction,
            "range": [_num(self.range[0]), _num(self.range[1])],
            "description": self.description,
            "sample_column": self.column,
        }


def _num(x: float) -> float | str:
    return x if x == x and abs(x) != float("inf") else ("inf" if x > 0 else "-inf")


METRICS: dict[str, Metric] = {}


def register(cls: type[Metric]) -> type[Metric]:
    """Class decorator: instantiate and add to ``METRICS`` under ``cls.name``."""
    inst = cls()
    for attr in ("name", "version", "direction", "range", "description"):
        if not hasattr(inst, attr):
            raise TypeError(f"metric class {cls.__name__} does not set {attr!r}")
    if inst.direction not in ("higher", "lower", "none"):
        raise ValueError(f"metric {inst.name!r}: direction must be higher/lower/none, got {inst.direction!r}")
    unknown = set(inst.needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"metric {inst.name!r}: unknown needs {sorted(unknown)}; known: {NEEDS}")
    if inst.name in METRICS and type(METRICS[inst.name]) is not cls:
        raise ValueError(f"metric name {inst.name!r} is already registered by {type(METRICS[inst.name]).__name__}")
    METRICS[inst.name] = inst
    return cls


def get_metrics(names: list[str] | tuple[str, ...] | None = None) -> list[Metric]:
    """The registered metrics called ``names`` (all, in registration order, when None)."""
    if names is None:
        return list(METRICS.values())
    out = []
    for n in names:
        if n not in METRICS:
            raise KeyError(f"unknown metric {n!r}; registered: {', '.join(METRICS)}")
        out.append(METRICS[n])
    return out
