"""Mixture policies: turn per-dataset DMC scores into a mixture over candidate datasets.

Scores are DMC values (range [0, 1], higher = more compatible) or any score oriented so that
higher is better. A NaN score means "could not be measured": that dataset gets weight 0 for this
update, and the reason is reported. When every score is NaN the policy keeps the mixture in
effect and says so (there is nothing to decide on); with no mixture yet it raises.

The weights are computed by dmc.selection.weights (shared with static selection), and policies
are spelled as there, NAME[:ARG]: `argmax[:DWELL]`, `softmax[:TAU]`, `proportional`.

A re-score is an estimate from a small probe, so `decide` also takes each score's standard error
(`noise`, from the re-score's bootstrap over probe samples). `argmax` uses it to switch only on
evidence: it leaves the dataset it trains on for a better-scoring one only when the score gap is
larger than the noise allows at its `confidence` (a one-sided normal test on the difference of two
independent estimates); before it decides, `undecided` names the datasets whose scores need more
evidence (a challenger leading within the margin, and the active dataset), which the dynamic
curriculum then gathers (dmc.curriculum.rescore.DMCRescorer.refine). `softmax` and `proportional`
weigh every dataset by its point score and never ask for more.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from dmc.selection.weights import (
    DEFAULT_TAU,
    TAU,
    PolicyArg,
    parse_policy_spec,
    policy_usage,
    proportional_weights,
    softmax_weights,
    top1,
    unscored_note,
)


@dataclass
class PolicyDecision:
    """A mixture chosen by a policy, and why."""

    weights: list[float]
    reason: str


class MixturePolicy(Protocol):
    name: str

    def decide(self, names: Sequence[str], scores: Mapping[str, float], current: np.ndarray | None,
               noise: Mapping[str, float] | None = None) -> PolicyDecision:
        """Return the next mixture (weights aligned with `names`, summing to 1); `noise` holds the
        scores' standard errors where known."""
        ...

    def undecided(self, names: Sequence[str], scores: Mapping[str, float],
                  noise: Mapping[str, float] | None = None) -> list[str]:
        """The datasets whose scores must be more precise before `decide` can tell (none: decide now)."""
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
    return unscored_note(dict(zip(names, s.tolist())))


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


def _aligned(names: Sequence[str], weights: Mapping[str, float]) -> list[float]:
    """Weights in the order of `names`; a name without one (unscored) gets 0."""
    return [float(weights.get(n, 0.0)) for n in names]


def switch_margin(se_new: float, se_active: float, confidence: float) -> float:
    """The score gap a challenger needs over the active dataset to replace it: z(confidence) times
    the standard error of the difference of two independent estimates; 0 when `confidence` is 0 or
    either error is unknown (NaN: no bootstrap), i.e. the point scores decide."""
    if confidence <= 0 or not (math.isfinite(se_new) and math.isfinite(se_active)):
        return 0.0
    return NormalDist().inv_cdf(confidence) * math.hypot(se_new, se_active)


class ArgmaxPolicy:
    """All weight on the best-scoring dataset; switch only after `min_dwell` re-scores on the current
    one, and only when the best beats the current one beyond the re-score's noise.

    Ties go to the dataset listed first. `min_dwell` counts decisions (re-scores), so with
    re-scoring every N steps a dataset is kept for at least `min_dwell * N` steps. `confidence`
    (in [0, 1)) is the one-sided confidence that the challenger's score is higher, given both
    scores' standard errors (:func:`switch_margin`); 0 follows the point scores.
    """

    name = "argmax"

    def __init__(self, min_dwell: int = 2, confidence: float = 0.0):
        if min_dwell < 1:
            raise ValueError(f"min_dwell must be >= 1, got {min_dwell}")
        if not 0.0 <= confidence < 1.0:
            raise ValueError(f"confidence must lie in [0, 1), got {confidence}")
        self.min_dwell = min_dwell
        self.confidence = float(confidence)
        self.active: str | None = None
        self.dwell = 0  # decisions made since `active` was chosen

    def _contest(self, names: Sequence[str], s: np.ndarray, noise: Mapping[str, float] | None
                 ) -> tuple[str, float, float]:
        """(best dataset, its gap over the active one, the noise margin that gap must clear)."""
        assert self.active is not None
        best = top1(dict(zip(names, s.tolist())))  # ties: the dataset listed first
        if best == self.active:
            return best, 0.0, 0.0
        se = {n: _float(noise.get(n)) if noise else math.nan for n in names}
        gap = float(s[names.index(best)] - s[names.index(self.active)])
        if not math.isfinite(gap):  # the active dataset could not be scored this time: the best leads
            gap = math.inf
        return best, gap, switch_margin(se[best], se[self.active], self.confidence)

    def undecided(self, names: Sequence[str], scores: Mapping[str, float],
                  noise: Mapping[str, float] | None = None) -> list[str]:
        """[active, best] when a switch is allowed (dwell reached) and the best-scoring dataset leads
        the active one by less than the noise margin, so that more evidence could decide; else []."""
        s = _score_vector(names, scores)
        if self.active is None or self.dwell < self.min_dwell or not np.isfinite(s).any():
            return []
        best, gap, margin = self._contest(names, s, noise)
        return [self.active, best] if best != self.active and 0.0 < gap <= margin else []

    def decide(self, names: Sequence[str], scores: Mapping[str, float], current: np.ndarray | None,
               noise: Mapping[str, float] | None = None) -> PolicyDecision:
        s = _score_vector(names, scores)
        if not np.isfinite(s).any():
            if current is not None:
                self.dwell += 1
            return _all_nan(names, s, current)
        best = top1(dict(zip(names, s.tolist())))  # ties: the dataset listed first
        if self.active is None:
            self.active, self.dwell, reason = best, 1, f"start on {best}"
            w = np.array([1.0 if n == self.active else 0.0 for n in names])
            return PolicyDecision(w.tolist(), reason + _nan_note(names, s))
        best, gap, margin = self._contest(names, s, noise)
        if best != self.active and self.dwell >= self.min_dwell and gap > margin:
            reason = (f"switch {self.active} -> {best} after {self.dwell} re-scores"
                      + (f" (gap {gap:.3g} > noise margin {margin:.3g})" if margin > 0 else ""))
            self.active, self.dwell = best, 1
        else:
            self.dwell += 1
            why = ""
            if best != self.active:
                why = (f" (best is {best}; dwell {self.dwell - 1}/{self.min_dwell})" if self.dwell - 1 < self.min_dwell
                       else f" (best is {best}, gap {gap:.3g} within noise margin {margin:.3g})")
            reason = f"stay on {self.active}" + why
        w = np.array([1.0 if n == self.active else 0.0 for n in names])
        return PolicyDecision(w.tolist(), reason + _nan_note(names, s))

    def state_dict(self) -> dict[str, Any]:
        return {"active": self.active, "dwell": self.dwell, "min_dwell": self.min_dwell, "confidence": self.confidence}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.active, self.dwell = state["active"], int(state["dwell"])


class SoftmaxPolicy:
    """Weights = softmax(score / tau). Small tau approaches argmax; large tau approaches uniform."""

    name = "softmax"

    def __init__(self, tau: float = DEFAULT_TAU):
        if not tau > 0:
            raise ValueError(f"softmax temperature tau must be > 0, got {tau}")
        self.tau = float(tau)

    def decide(self, names: Sequence[str], scores: Mapping[str, float], current: np.ndarray | None,
               noise: Mapping[str, float] | None = None) -> PolicyDecision:
        s = _score_vector(names, scores)
        if not np.isfinite(s).any():
            return _all_nan(names, s, current)
        w = softmax_weights(dict(zip(names, s.tolist())), self.tau)
        return PolicyDecision(_aligned(names, w), f"softmax(score/{self.tau:g})" + _nan_note(names, s))

    def undecided(self, names: Sequence[str], scores: Mapping[str, float],
                  noise: Mapping[str, float] | None = None) -> list[str]:
        return []  # a mixture follows the point scores: nothing to decide

    def state_dict(self) -> dict[str, Any]:
        return {"tau": self.tau}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class ProportionalPolicy:
    """Weights proportional to the scores (negative scores count as 0; uniform over the scored
    datasets when every score is <= 0)."""

    name = "proportional"

    def decide(self, names: Sequence[str], scores: Mapping[str, float], current: np.ndarray | None,
               noise: Mapping[str, float] | None = None) -> PolicyDecision:
        s = _score_vector(names, scores)
        if not np.isfinite(s).any():
            return _all_nan(names, s, current)
        w, why = proportional_weights(dict(zip(names, s.tolist())))
        return PolicyDecision(_aligned(names, w), why + _nan_note(names, s))

    def undecided(self, names: Sequence[str], scores: Mapping[str, float],
                  noise: Mapping[str, float] | None = None) -> list[str]:
        return []

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


GRAMMAR: dict[str, PolicyArg | None] = {
    "argmax": PolicyArg("DWELL", int, lambda x: x >= 1, "a positive integer (re-scores)", "3"),
    "softmax": TAU,
    "proportional": None,
}
POLICIES = tuple(GRAMMAR)
SPELLINGS = tuple(policy_usage(GRAMMAR))  # argmax[:DWELL], softmax[:TAU], proportional


def make_policy(spec: str | MixturePolicy, *, min_dwell: int = 2, tau: float = DEFAULT_TAU,
                confidence: float = 0.0) -> MixturePolicy:
    """Build a policy from its spelling (`argmax[:DWELL]`, `softmax[:TAU]`, `proportional`), or pass
    an instance through. Without the inline argument, `min_dwell` / `tau` apply; `confidence` is
    argmax's switching confidence.
    """
    if not isinstance(spec, str):
        return spec
    name, arg = parse_policy_spec(spec, GRAMMAR, what="mixture policy")
    if name == "argmax":
        return ArgmaxPolicy(int(arg) if arg is not None else min_dwell, confidence)
    if name == "softmax":
        return SoftmaxPolicy(float(arg) if arg is not None else tau)
    return ProportionalPolicy()
