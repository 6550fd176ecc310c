"""Mixture weights from scores, and the NAME[:ARG] policy syntax: shared by static selection
(dmc.selection) and the curriculum (dmc.curriculum.policies). Pure functions, no model.

Weights (``scores``: name -> score, higher is better unless a function takes ``descending``):

- :func:`softmax_weights`: softmax(score / tau); small tau approaches top-1, large tau uniform.
- :func:`proportional_weights`: proportional to the score, negative scores clipped to 0; uniform
  over the scored names when every score is <= 0.
- :func:`rank_by_score` / :func:`top1`: best first by direction; ties keep the listed order.

A score that is None or not finite (NaN) means "could not be measured": that name is left out of
the returned weights, i.e. gets weight 0, and :func:`unscored_note` says so. When no score is
finite these functions raise :class:`NoFiniteScore` (a ValueError); a caller with a mixture
already in effect (the curriculum) checks :func:`finite_scores` first and keeps it instead.

Policy specs are spelled ``NAME[:ARG]`` (``top1``, ``topk:3``, ``softmax``, ``softmax:0.1``,
``argmax:3``, ``samples:top-fraction:0.3``); :func:`parse_policy_spec` splits one against a
grammar (each caller's table of names and their :class:`PolicyArg`) and checks the argument.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

DEFAULT_TAU = 0.05

# Old spellings of selection policies, refused with the new one.
RENAMED = {"mix:softmax": "softmax[:TAU]", "mix:proportional": "proportional"}


class NoFiniteScore(ValueError):
    """No name has a finite score: there is nothing to weight by."""


def finite_scores(scores: Mapping[str, float | None]) -> dict[str, float]:
    """The scores that are finite numbers, in the given order (None and NaN are left out)."""
    out: dict[str, float] = {}
    for k, v in scores.items():
        if v is None:
            continue
        x = float(v)
        if math.isfinite(x):
            out[k] = x
    return out


def unscored(scores: Mapping[str, float | None]) -> list[str]:
    """The names whose score is None or not finite (they get weight 0)."""
    ok = finite_scores(scores)
    return [k for k in scores if k not in ok]


def unscored_note(scores: Mapping[str, float | None]) -> str:
    """``"; unscored (weight 0): [...]"`` when some score is missing, else ``""``."""
    bad = unscored(scores)
    return f"; unscored (weight 0): {bad}" if bad else ""


def _require_finite(scores: Mapping[str, float | None]) -> dict[str, float]:
    ok = finite_scores(scores)
    if not ok:
        raise NoFiniteScore(f"no dataset has a finite score: {dict(scores)}")
    return ok


def softmax_weights(scores: Mapping[str, float | None], tau: float = DEFAULT_TAU) -> dict[str, float]:
    """softmax(score / tau) over the names with a finite score; tau > 0 (small -> top-1)."""
    if not tau > 0:
        raise ValueError(f"softmax temperature tau must be > 0, got {tau!r}")
    ok = _require_finite(scores)
    z = np.array(list(ok.values()), dtype=np.float64) / tau
    e = np.exp(z - z.max())
    return dict(zip(ok, (e / e.sum()).tolist()))


def proportional_weights(scores: Mapping[str, float | None]) -> tuple[dict[str, float], str]:
    """(weights proportional to the finite scores clipped at 0, reason); uniform when all are <= 0."""
    ok = {k: max(v, 0.0) for k, v in _require_finite(scores).items()}
    total = sum(ok.values())
    if total <= 0:
        return {k: 1.0 / len(ok) for k in ok}, "all scores are <= 0: uniform over the scored datasets"
    return {k: v / total for k, v in ok.items()}, "proportional to score"


def rank_by_score(scores: Mapping[str, float | None], descending: bool = True) -> list[str]:
    """The names with a finite score, best first (highest when ``descending``); ties keep the order given."""
    ok = finite_scores(scores)
    return sorted(ok, key=lambda k: -ok[k] if descending else ok[k])


def top1(scores: Mapping[str, float | None], descending: bool = True) -> str:
    """The best name by score (ties: the one listed first); raises NoFiniteScore when none is scored."""
    _require_finite(scores)
    return rank_by_score(scores, descending)[0]


# -- policy specs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PolicyArg:
    """The argument of a policy: its placeholder (``K``), type (int or float), the condition it
    must meet (``valid``, described by ``must``, e.g. "a positive integer"), and whether it may
    be left out (``required=False``: the caller applies its default)."""

    placeholder: str
    type: type
    valid: Callable[[float], bool]
    must: str
    example: str
    required: bool = False


class PolicySpec(NamedTuple):
    """A parsed ``NAME[:ARG]``: ``arg`` is None when the optional argument was left out."""

    name: str
    arg: int | float | None


TAU = PolicyArg("TAU", float, lambda x: x > 0, "a number > 0", "0.05")
Grammar = Mapping[str, PolicyArg | None]

_INT = re.compile(r"[+-]?\d+")


def policy_usage(grammar: Grammar) -> list[str]:
    """How each policy of ``grammar`` is spelled: ``top1``, ``topk:K``, ``softmax[:TAU]`` ..."""
    out = []
    for name, arg in grammar.items():
        if arg is None:
            out.append(name)
        else:
            out.append(f"{name}:{arg.placeholder}" if arg.required else f"{name}[:{arg.placeholder}]")
    return out


def parse_policy_spec(spec: str, grammar: Grammar, *, what: str = "policy") -> PolicySpec:
    """Splits ``NAME[:ARG]`` with NAME one of ``grammar`` (names may contain ':' themselves, as
    ``samples:top-fraction``; the longest matching name wins) and checks the argument.

    Raises ValueError naming the policy: unknown name (listing the valid spellings), an old
    spelling (saying the new one), an argument given to a policy without one, a missing required
    argument, or an argument of the wrong type or range.
    """
    if not isinstance(spec, str):
        raise TypeError(f"{what} must be a string like 'softmax:0.1', got {type(spec).__name__}")
    spec = spec.strip()
    for old, new in RENAMED.items():
        if spec == old or spec.startswith(old + ":"):
            hint = "; the temperature is inline (softmax:0.1), not a separate tau option" if "TAU" in new else ""
            raise ValueError(f"{what} {spec!r} is now spelled {new!r}{hint}")
    name = next((n for n in sorted(grammar, key=len, reverse=True) if spec == n or spec.startswith(n + ":")), None)
    if name is None:
        raise ValueError(f"unknown {what} {spec!r}; choose one of {', '.join(policy_usage(grammar))}")
    arg = grammar[name]
    raw = spec[len(name) + 1:] if len(spec) > len(name) else None
    if arg is None:
        if raw is not None:
            raise ValueError(f"{what} {name!r} takes no argument, got {spec!r}")
        return PolicySpec(name, None)
    if raw is None or raw == "":
        if arg.required or raw == "":
            raise ValueError(f"{what} {name!r} needs {arg.placeholder} ({arg.must}), e.g. {name}:{arg.example}; "
                             f"got {spec!r}")
        return PolicySpec(name, None)
    value: int | float | None = None
    if arg.type is int:
        value = int(raw) if _INT.fullmatch(raw) else None
    else:
        try:
            value = float(raw)
        except ValueError:
            value = None
        if value is not None and not math.isfinite(value):
            value = None
    if value is None or not arg.valid(value):
        raise ValueError(f"{what} {spec!r}: {arg.placeholder} must be {arg.must} (e.g. {name}:{arg.example}), "
                         f"got {raw!r}")
    return PolicySpec(name, value)
