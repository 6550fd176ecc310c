"""Exact parsing of numeric answers into fractions.

Accepted: integers, decimals, thousands separators (1,234), fractions ``a/b`` and
``\\frac{a}{b}``/``\\dfrac``/``\\tfrac``, scientific notation (``1.5e-3``, ``1.5 \\times 10^{-3}``),
percentages (``50%``, ``50\\%``, ``50 percent``: value 0.5), an optional sign, a currency sign,
a leading ``x =``, and a trailing unit of words (``12 apples``, ``5 km/h``, ``30^\\circ``).
Anything else is not a number (`parse_number` returns None); nothing is guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from dmc.grading.extract import clean_answer


@dataclass(frozen=True)
class ParsedNumber:
    """`value` is the number's exact value (a percentage divided by 100); `raw` the value as
    written (without the percent scaling); `percent` whether it was written as a percentage."""

    value: Fraction
    raw: Fraction
    percent: bool


_DEC = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN_RE = re.compile(rf"[+-]?{_DEC}(?:[eE][+-]?\d+)?")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SLASH_RE = re.compile(rf"([+-]?)({_DEC})\s*/\s*({_DEC})")
_FRAC_RE = re.compile(rf"([+-]?)\\[dt]?frac\s*\{{\s*([+-]?{_DEC})\s*\}}\s*\{{\s*([+-]?{_DEC})\s*\}}")
_FRAC_SHORT_RE = re.compile(r"([+-]?)\\[dt]?frac\s*(\d)(\d)")  # \frac12
_SCI_RE = re.compile(rf"([+-]?{_DEC})\s*(?:\\times|\\cdot|×|\*|x)\s*10\s*\^\s*\{{?\s*([+-]?\d+)\s*\}}?")
_PERCENT_RE = re.compile(r"\s*(?:\\?%|\s+percent)$", re.IGNORECASE)
_ASSIGN_RE = re.compile(r"^[A-Za-z]\w*\s*=\s*")
_CURRENCY_RE = re.compile(r"^(?:\\\$|\$|€|£|¥)\s*")
_DEGREE_RE = re.compile(r"\s*(?:\^\s*\{?\\circ\}?|°|\\degree)$")
# A unit: words of at least two letters (so "2x" is not read as 2), joined by / or ^n.
_UNIT_RE = re.compile(r"(?:\s*[A-Za-z]{2,}(?:\s*(?:/|\^)\s*[A-Za-z0-9]+)*\.?)+$")
# Words that make a trailing "unit" part of the math, not a unit ("2 pi" is not 2).
_MATH_WORDS = frozenset(
    {"pi", "sqrt", "ln", "log", "sin", "cos", "tan", "exp", "inf", "infinity"}
    | {"and", "or", "to", "plus", "minus", "times", "over"}
)
_TEXT_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_SPACING_RE = re.compile(r"\\[!,;: ]|\\left|\\right|\\displaystyle")


def _fraction(num: str) -> Fraction:
    return Fraction(num.rstrip(".") if num.endswith(".") else num)


def _parse_core(s: str) -> Fraction | None:
    """The value of a bare number / fraction / scientific form, or None."""
    s = s.strip()
    while len(s) >= 2 and s[0] + s[-1] in ("()", "{}"):  # (5), {5}
        s = s[1:-1].strip()
    if _PLAIN_RE.fullmatch(s):
        return _fraction(s)
    if _THOUSANDS_RE.fullmatch(s):
        return _fraction(s.replace(",", ""))
    for rx in (_FRAC_RE, _FRAC_SHORT_RE, _SLASH_RE):
        m = rx.fullmatch(s)
        if m:
            sign, a, b = m.groups()
            den = _fraction(b)
            if den == 0:
                return None
            val = _fraction(a) / den
            return -val if sign == "-" else val
    m = _SCI_RE.fullmatch(s)
    if m:
        return _fraction(m.group(1)) * Fraction(10) ** int(m.group(2))
    return None


def parse_number(text: str) -> ParsedNumber | None:
    """Parse a numeric answer exactly (see the module docstring); None when it is not a number."""
    s = clean_answer(text)
    s = _SPACING_RE.sub("", s)
    s = _TEXT_RE.sub(lambda m: " " + m.group(1).strip() + " ", s).strip()
    s = _ASSIGN_RE.sub("", s)
    s = _CURRENCY_RE.sub("", s)
    s = _DEGREE_RE.sub("", s).strip()
    percent = False
    m = _PERCENT_RE.search(s)
    if m:
        percent, s = True, s[: m.start()].strip()
    raw = _parse_core(s)
    if raw is None and not percent:
        # "12 apples", "5 km/h": drop a trailing unit, then a percent sign before it.
        unit = _UNIT_RE.search(s)
        words = set(re.findall(r"[a-z]+", unit.group(0).lower())) if unit else set()
        if unit and unit.start() > 0 and not words & _MATH_WORDS:
            s = s[: unit.start()].strip()
            m = _PERCENT_RE.search(s)
            if m:
                percent, s = True, s[: m.start()].strip()
            raw = _parse_core(_CURRENCY_RE.sub("", s))
    if raw is None:
        return None
    return ParsedNumber(value=raw / 100 if percent else raw, raw=raw, percent=percent)


def numbers_close(a: Fraction, b: Fraction, rel_tol: float, abs_tol: float) -> bool:
    """|a - b| <= max(rel_tol * max(|a|, |b|), abs_tol), computed exactly (no float overflow)."""
    diff = abs(a - b)
    if diff == 0:
        return True
    return diff <= max(Fraction(rel_tol) * max(abs(a), abs(b)), Fraction(abs_tol))
