"""Verifiers: exact, normalized, numeric, math and auto, and the registry `get_verifier`."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from dmc.grading.base import Verifier, precheck
from dmc.grading.gold import (
    answer_choice,
    choice_letter,
    is_expression,
    split_alternatives,
    split_list,
    unordered_marker,
)
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
_PENDING = Grade.ungradable("pending math-verify")


class _Pass:
    """One pass over the pairs: math-verify results known so far, and the pairs still needed."""

    def __init__(self, results: dict[tuple[str, str], Grade]) -> None:
        self.results = results
        self.need: list[tuple[str, str]] = []


def _combine_all(grades: list[Grade], answer: str) -> Grade:
    """Every item must be correct: a gold-side failure or a wrong item decides first."""
    for g in grades:
        if g.status == "ungradable" and g.reason and "gold" in g.reason:
            return Grade.ungradable(g.reason, answer)
    wrong = [g for g in grades if g.status == "wrong"]
    if wrong:
        return Grade.wrong(answer, wrong[0].reason)
    bad = [g for g in grades if g.status == "ungradable"]
    return Grade.ungradable(bad[0].reason or "ungradable", answer) if bad else Grade.correct(answer)


class AutoVerifier(Verifier):
    """Picks a verifier from the gold (see docs/DMC.md "Grading"):

    - answer and gold equal after removing delimiters and whitespace: correct;
    - numeric gold: numeric verifier; an answer that is not a plain number goes to math
      (``2^{-1}`` vs ``0.5``) when math-verify is installed, else it is wrong;
    - a gold with alternatives ("A, or equivalently B", "A (or B)"): correct when any form is;
    - a choice-letter gold ("B", "(B)", "option B"): the answer's choice letter must match;
    - a list gold ("[3, 8, 1]", "apple, banana, cherry"): item by item, in order (as a multiset
      when `unordered_lists` or the gold says "in any order");
    - a gold of words only: normalized text;
    - an expression: math (math-verify); a free-form gold with words that is no expression
      ("sum_(i=1)^n i^2") is `ungradable`; without math-verify: normalized text.
    """

    name = "auto"

    def __init__(
        self,
        rel_tol: float = 1e-6,
        abs_tol: float = 1e-9,
        timeout: float = 10.0,
        worker: MathWorker | None = None,
        unordered_lists: bool = False,
    ) -> None:
        self.numeric = NumericVerifier(rel_tol, abs_tol)
        self.normalized = NormalizedVerifier()
        self.unordered_lists = unordered_lists
        self.math: MathVerifier | None = MathVerifier(timeout, worker) if math_verify_installed() else None

    def _math(self, answer: str, gold: str, ps: _Pass) -> Grade:
        key = (answer, gold)
        if key in ps.results:
            return ps.results[key]
        ps.need.append(key)
        return _PENDING

    def _judge(self, answer: str, gold: str, ps: _Pass) -> Grade:
        pre = precheck(answer, gold)
        if pre is not None:
            return pre
        if compact(answer) == compact(gold):
            return Grade.correct(answer)
        if parse_number(gold) is not None:
            if parse_number(answer) is not None or self.math is None:
                return self.numeric.verify(answer, gold)
            return self._math(answer, gold, ps)
        if self.math is None and choice_letter(gold) is None and split_list(gold) is None:
            return self.normalized.verify(answer, gold)
        alts = split_alternatives(gold)
        if len(alts) > 1:
            grades = [self._judge(answer, alt, ps) for alt in alts]
            if any(g.status == "correct" for g in grades):
                return Grade.correct(answer)
            if all(g.status == "ungradable" for g in grades):
                return Grade.ungradable("no form of the gold is readable: " + "; ".join(
                    str(g.reason) for g in grades), answer)
            return Grade.wrong(answer, next(g.reason for g in grades if g.status == "wrong"))
        return self._judge_one(answer, gold, ps)

    def _judge_one(self, answer: str, gold: str, ps: _Pass) -> Grade:
        letter = choice_letter(gold)
        if letter is not None:
            got = answer_choice(answer, "")
            if got is None:
                return Grade.wrong(answer, "no choice letter in the answer")
            return Grade.correct(answer) if got == letter else Grade.wrong(answer)
        gold, unordered = unordered_marker(gold)
        if _TEXT_GOLD_RE.fullmatch(normalize_text(gold)):
            return self.normalized.verify(answer, gold)
        glist = split_list(gold)
        if glist is not None:
            alist = split_list(answer)
            g_items, g_br = glist
            if alist is None:
                a_items, a_br = [answer], None
            else:
                a_items, a_br = alist
            # "(0, 1]" or "[0, 1)" against "(0, 1)": intervals, for math-verify.
            if g_br is not None and a_br is not None and g_br != a_br and self.math is not None:
                return self._math(answer, gold, ps)
            if len(a_items) != len(g_items):
                return Grade.wrong(answer, f"{len(a_items)} items, gold has {len(g_items)}")
            if unordered or self.unordered_lists:
                return self._judge_multiset(answer, a_items, g_items, ps)
            return _combine_all([self._judge(a, g, ps) for a, g in zip(a_items, g_items)], answer)
        if self.math is None:
            return self.normalized.verify(answer, gold)
        if not is_expression(gold):
            return Grade.ungradable(f"gold is free-form text, not an expression: {gold[:200]!r}", answer)
        return self._math(answer, gold, ps)

    def _judge_multiset(self, answer: str, a_items: list[str], g_items: list[str], ps: _Pass) -> Grade:
        table = [[self._judge(a, g, ps) for a in a_items] for g in g_items]
        used: set[int] = set()
        for row in table:
            k = next((j for j, gr in enumerate(row) if j not in used and gr.status == "correct"), None)
            if k is None:
                pending = [gr for j, gr in enumerate(row) if j not in used and gr.status == "ungradable"]
                if pending:
                    return Grade.ungradable(pending[0].reason or "ungradable", answer)
                return Grade.wrong(answer, "the items differ")
            used.add(k)
        return Grade.correct(answer)

    def verify(self, answer: str, gold: str) -> Grade:
        return self.verify_many([(answer, gold)])[0]

    def verify_many(self, pairs: Sequence[tuple[str, str]]) -> list[Grade]:
        first = _Pass({})
        grades = [self._judge(a, g, first) for a, g in pairs]
        if not first.need:
            return grades
        assert self.math is not None
        todo = list(dict.fromkeys(first.need))
        results = dict(zip(todo, self.math.verify_many(todo)))
        second = _Pass(results)
        return [self._judge(a, g, second) for a, g in pairs]


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
