"""Mixture policies: turn per-dataset DMC scores into a mixture over candidate datasets.

Scores are DMC values (range [0, 1], higher = more compatible) or any score oriented so that
higher is better. A NaN score means "could not be measured": that dataset gets weight 0 for this
update, and the reason is reported. When every score is NaN the policy keeps the mixture in
effect and says so (there is nothing to decide on); with no mixture yet it raises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass
class PolicyDecision:
    """A mixture chosen by a policy, and why."""

    weights: list[float]
    reason: str


class MixturePolicy(Protocol):
    name: str

    def decide(self, names: Sequence[str], scores: Mapping[str, float], current: np.ndarray | None) -> PolicyDecision:
        """Return the next mixture (weights aligned with `names`, summing to 1)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _score_vector(names: Sequence[str], scores: Mapping[str, float]) -> np.ndarray:
    missing = [n for n in names if n not in scores]
    if missing:
        raise KeyError(f"the re-scorer returned no score for datasets {missing} (got {sorted(scores)})")
    return np.array([float(scores[n]) if scores[n] is not None else math.nan for n in names], dtype=np.float64)


def _all_nan(names: Sequence[str], s: np.ndarray, current: np.ndarray | None) -> PolicyDecision:
    if current is None:
        raise ValueError(f"no dataset could be scored ({list(names)} are all NaN): cannot choose a first mixture")
    return PolicyDecision(current.tolist(), "all scores NaN; mixture unchanged")


def _nan_note(names: Sequence[str], s: np.ndarray) -> str:
    bad = [n for n, x in zip(names, s) if not np.isfinite(x)]
    return f"; unscored (weight 0): {bad}" if bad else ""


class ArgmaxPolicy:
    """All weight on the best-scoring dataset; switch only after `min_dwell` re-scores on the current one.

    Ties go to the dataset listed first. `min_dwell` counts decisions (re-scores), so with
    re-scoring every N steps a dataset is kept for at least `min_dwell * N` steps.
    """

    name = "argmax"

    def __init__(self, min_dwell: int = 2):
        if min_dwell < 1:
            raise ValueError(f"min_dwell must be >= 1, got {min_dwell}")
        self.min_dwell = min_dwell
        self.active: str | None = None
        self.dwell = 0  # decisions made since `active` was chosen

    def decide(self, names: Sequence[str], scores: Mapping[str, float], current: np.ndarray | None) -> PolicyDecision:
        s = _score_vector(names, scores)
        if not np.isfinite(s).any():
            if current is not None:
                self.dwell += 1
            return _all_nan(names, s, current)
        best = names[int(np.nanargmax(np.where(np.isfinite(s), s, -np.inf)))]
        if self.active is None:
            self.active, self.dwell, reason = best, 1, f"start on {best}"
        elif best != self.active and self.dwell >= self.min_dwell:
            reason = f"switch {self.active} -> {best} after {self.dwell} re-scores"
            self.active, self.dwell = best, 1
        else:
            self.dwell += 1
            reason = f"stay on {self.active}" + (f" (best is {best}; dwell {self.dwell - 1}/{self.min_dwell})" if best != self.active else "")
        w = np.array([1.0 if n == self.active else 0.0 for n in names])
        return PolicyDecision(w.tolist(), reason + _nan_note(names, s))

    def state_dict(self) -> dict[str, Any]:
        return {"active": self.active, "dwell": self.dwell, "min_dwell": self.min_dwell}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.active, self.dwell = state["active"], int(state["dwell"])


class SoftmaxPolicy:
    """Weights = softmax(score / tau). Small tau approaches argmax; large tau approaches uniform."""

    name = "softmax"

    def __init__(self, tau: float = 0.05):
        if not tau > 0:
            raise ValueError(f"softmax temperature tau must be > 0, got {tau}")
        self.tau = float(tau)

    def decide(self, names: Sequence[str], scores: Mapping[str, float], current: np.ndarray | None) -> PolicyDecision:
        s = _score_vector(names, scores)
        ok = np.isfinite(s)
        if not ok.any():
            return _all_nan(names, s, current)
        z = np.where(ok, s / self.tau, -np.inf)
        z = z - z[ok].max()
        w = np.where(ok, np.exp(z), 0.0)
        return PolicyDecision((w / w.sum()).tolist(), f"softmax(score/{self.tau:g})" + _nan_note(names, s))

    def state_dict(self) -> dict[str, Any]:
        return {"tau": self.tau}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class ProportionalPolicy:
    """Weights proportional to the scores (negative scores count as 0)."""

    name = "proportional"

    def decide(self, names: Sequence[str], scores: Mapping[str, float], current: np.ndarray | None) -> PolicyDecision:
        s = _score_vector(names, scores)
        ok = np.isfinite(s)
        if not ok.any():
            return _all_nan(names, s, current)
        w = np.where(ok, np.clip(s, 0.0, None), 0.0)
        if w.sum() <= 0:
            w = ok.astype(np.float64)  # every measured score is 0: no preference among them
            return PolicyDecision((w / w.sum()).tolist(), "all measured scores are 0: uniform over them" + _nan_note(names, s))
        return PolicyDecision((w / w.sum()).tolist(), "proportional to score" + _nan_note(names, s))

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


POLICIES = ("argmax", "softmax", "proportional")


def make_policy(spec: str | MixturePolicy, *, min_dwell: int = 2, tau: float = 0.05) -> MixturePolicy:
    """Build a policy from a name (`argmax`, `softmax`, `proportional`), or pass an instance through.

    `argmax:3` and `softmax:0.1` set `min_dwell` and `tau` inline.
    """
    if not isinstance(spec, str):
        return spec
    name, _, arg = spec.partition(":")
    if name == "argmax":
        return ArgmaxPolicy(int(arg) if arg else min_dwell)
    if name == "softmax":
        return SoftmaxPolicy(float(arg) if arg else tau)
    if name == "proportional":
        if arg:
            raise ValueError(f"policy 'proportional' takes no argument, got {spec!r}")
        return ProportionalPolicy()
    raise ValueError(f"unknown mixture policy {spec!r}; choose one of {POLICIES}")
