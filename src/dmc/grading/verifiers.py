"""Verifiers: exact, normalized, numeric, math and auto, and the registry `get_verifier`."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from dmc.grading.base import Verifier, precheck
from dmc.grading.mathverify import MathVerifier, math_verify_installed
from dmc.grading.normalize import compact, normalize_text
from dmc.grading.numeric import numbers_close, parse_number
from dmc.grading.result import Grade
from dmc.grading.worker import MathWorker


class ExactVerifier(Verifier):
    """Correct iff the answer equals the gold exactly, after stripping surrounding whitespace."""

    name = "exact"

    def verify(self, answer: str, gold: str) -> Grade:
        pre = precheck(answer, gold)
        if pre is not None:
            return pre
        return Grade.correct(answer) if answer.strip() == gold.strip() else Grade.wrong(answer)


class NormalizedVerifier(Verifier):
    """Correct iff both are equal after `normalize_text` (case, whitespace, trailing period,
    ``\\text{}``, surrounding ``$``)."""

    name = "normalized"

    def verify(self, answer: str, gold: str) -> Grade:
        pre = precheck(answer, gold)
        if pre is not None:
            return pre
        same = normalize_text(answer) == normalize_text(gold)
        return Grade.correct(answer) if same else Grade.wrong(answer)


class NumericVerifier(Verifier):
    """Compares numbers (see `dmc.grading.numeric`): correct iff
    |a - g| <= max(rel_tol * max(|a|, |g|), abs_tol), computed exactly.

    A gold that is not a number is `ungradable`; an answer that is not a number is `wrong`
    (the text failed to give a number). When exactly one side is written as a percentage, the
    numbers as written are also compared (gold "50%" accepts 50 and 0.5).
    """

    name = "numeric"

    def __init__(self, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> None:
        if rel_tol < 0 or abs_tol < 0:
            raise ValueError(f"tolerances must be >= 0, got rel_tol={rel_tol}, abs_tol={abs_tol}")
        self.rel_tol = rel_tol
        self.abs_tol = abs_tol

    def verify(self, answer: str, gold: str) -> Grade:
        pre = precheck(answer, gold)
        if pre is not None:
            return pre
        g = parse_number(gold)
        if g is None:
            return Grade.ungradable(f"gold is not a number: {gold[:200]!r}", answer)
        a = parse_number(answer)
        if a is None:
            return Grade.wrong(answer, "answer is not a number")
        candidates = [(a.value, g.value)]
        if a.percent != g.percent:
            candidates.append((a.raw, g.raw))
        if any(numbers_close(x, y, self.rel_tol, self.abs_tol) for x, y in candidates):
            return Grade.correct(answer)
        return Grade.wrong(answer)


# A gold made of words only ("yes", "Tuesday", "New York") is compared as text, not as a product
# of symbols (math-verify reads "yes" as y*e*s).
_TEXT_GOLD_RE = re.compile(r"[^\W\d_]{2,}(?:[ '\-][^\W\d_]+)*")


class AutoVerifier(Verifier):
    """Picks a verifier from the gold:

    - answer and gold equal after removing delimiters and whitespace: correct;
    - numeric gold: numeric verifier; an answer that is not a plain number goes to math
      (``2^{-1}`` vs ``0.5``) when math-verify is installed, else it is wrong;
    - a gold of words only: normalized text;
    - anything else: math (math-verify), or normalized text when math-verify is not installed.
    """

    name = "auto"

    def __init__(
        self,
        rel_tol: float = 1e-6,
        abs_tol: float = 1e-9,
        timeout: float = 10.0,
        worker: MathWorker | None = None,
    ) -> None:
        self.numeric = NumericVerifier(rel_tol, abs_tol)
        self.normalized = NormalizedVerifier()
        self.math: MathVerifier | None = MathVerifier(timeout, worker) if math_verify_installed() else None

    def _route(self, answer: str, gold: str) -> Grade | None:
        """The local verdict, or None when math-verify must decide."""
        pre = precheck(answer, gold)
        if pre is not None:
            return pre
        if compact(answer) == compact(gold):
            return Grade.correct(answer)
        if parse_number(gold) is not None:
            if parse_number(answer) is not None or self.math is None:
                return self.numeric.verify(answer, gold)
            return None
        if _TEXT_GOLD_RE.fullmatch(normalize_text(gold)) or self.math is None:
            return self.normalized.verify(answer, gold)
        return None

    def verify(self, answer: str, gold: str) -> Grade:
        return self.verify_many([(answer, gold)])[0]

    def verify_many(self, pairs: Sequence[tuple[str, str]]) -> list[Grade]:
        grades = [self._route(a, g) for a, g in pairs]
        todo = [k for k, gr in enumerate(grades) if gr is None]
        if todo:
            assert self.math is not None
            for k, gr in zip(todo, self.math.verify_many([pairs[k] for k in todo])):
                grades[k] = gr
        return [g for g in grades if g is not None]


VERIFIERS: dict[str, Callable[..., Verifier]] = {
    "exact": ExactVerifier,
    "normalized": NormalizedVerifier,
    "numeric": NumericVerifier,
    "math": MathVerifier,
    "auto": AutoVerifier,
}


def get_verifier(name: str | Verifier, **settings: Any) -> Verifier:
    """The verifier registered as `name` ("exact", "normalized", "numeric", "math", "auto"),
    built with `settings` (e.g. ``rel_tol=1e-3`` for numeric, ``timeout=5`` for math); a
    `Verifier` instance is returned as is."""
    if isinstance(name, Verifier):
        if settings:
            raise ValueError("settings cannot be applied to an already built Verifier")
        return name
    try:
        factory = VERIFIERS[name]
    except KeyError:
        raise ValueError(f"unknown verifier {name!r}; choose one of {sorted(VERIFIERS)}") from None
    return factory(**settings)
