"""Content spans: the parts of a trace that carry newly derived content (DESIGN.md §3).

A content span is a number or mathematical expression (selector ``numbers``) or a word (selector
``words``) of the response whose normalized string has not appeared earlier — in the question or
earlier in the response. A bracketed list or tuple of numbers is one expression; when it is new,
its elements are the content (brackets and separators are format). These are the results the student must compute itself;
copied operands and boilerplate are excluded. ``all`` marks every response token.

Pure functions over text and token offsets; no model involved.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

CONTENT_SELECTORS = ("numbers", "words", "all")

# Atomic mathematical spans, tried in this order at each position (first match wins):
#   a bracketed list or parenthesized tuple of numbers ("[2, 2, 4]", "[]", "(3, -1)": the result of
#   an operation on a sequence, new as a whole even when every element was seen before),
#   LaTeX \frac{..}{..} / \dfrac / \tfrac, \sqrt[..]{..}, a number raised to a power (2^{10}, 3^2),
#   a fraction a/b, a decimal or integer (with optional thousands separators), each with an
#   optional unary minus (a '-' not preceded by a word character or closing bracket: "x = -3" but
#   not "5-3").
_SIGN = r"(?:(?<![\w)\]}])-)?"
_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_ITEM = rf"{_SIGN}{_NUM}"
_MATH_RE = re.compile(
    rf"\[\s*(?:{_ITEM}(?:\s*,\s*{_ITEM})*)?\s*\]"
    rf"|\(\s*{_ITEM}(?:\s*,\s*{_ITEM})+\s*\)"
    r"|\\[dt]?frac\{[^{}]*\}\{[^{}]*\}"
    r"|\\sqrt(?:\[[^\]]*\])?\{[^{}]*\}"
    rf"|{_SIGN}{_NUM}\^(?:\{{[^{{}}]*\}}|-?\w+)"
    rf"|{_SIGN}{_NUM}/{_NUM}(?![\d.])"
    rf"|{_SIGN}{_NUM}"
)
_WORD_RE = re.compile(r"\w+")
_WS_RE = re.compile(r"\s+")


def _norm_math(s: str) -> str:
    # "1,000" and "1000" are the same number; whitespace inside LaTeX does not matter.
    return _WS_RE.sub("", s).replace(",", "") if re.fullmatch(r"-?[\d,]+(?:\.\d+)?", s) else _WS_RE.sub("", s)


def _norm_word(s: str) -> str:
    return s.lower()


def find_spans(text: str, content: str = "numbers") -> list[tuple[int, int, str]]:
    """All candidate spans of ``text`` as (char_start, char_end, normalized string), in order.

    ``content`` is ``numbers`` (numbers and math expressions) or ``words`` (\\w+ runs).
    """
    if content == "numbers":
        return [(m.start(), m.end(), _norm_math(m.group())) for m in _MATH_RE.finditer(text)]
    if content == "words":
        return [(m.start(), m.end(), _norm_word(m.group())) for m in _WORD_RE.finditer(text)]
    raise ValueError(f"content selector {content!r} has no spans; expected 'numbers' or 'words'")


def novel_spans(question: str, response: str, content: str = "numbers") -> list[tuple[int, int]]:
    """Char spans of ``response`` whose string is new: not in ``question`` and not earlier in ``response``.

    Only the first occurrence of a derived result counts; later repeats are copies. A new list or
    tuple of numbers gives the spans of its elements.
    """
    if content not in ("numbers", "words"):
        raise ValueError(f"unknown content selector {content!r}; expected one of {CONTENT_SELECTORS}")
    seen = {s for _, _, s in find_spans(question, content)}
    out: list[tuple[int, int]] = []
    for start, end, s in find_spans(response, content):
        if s not in seen:
            out += _items(response, start, end) if content == "numbers" else [(start, end)]
            seen.add(s)
    return out


_ITEM_RE = re.compile(_ITEM)


def _items(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A novel list or tuple counts by its elements (brackets and separators are format, not derived
    content); an empty list, or any other expression, counts whole."""
    if text[start] not in "[(":
        return [(start, end)]
    items = [(start + m.start(), start + m.end()) for m in _ITEM_RE.finditer(text[start:end])]
    return items or [(start, end)]


def content_token_mask(
    question: str,
    response: str,
    char_start: Sequence[int] | np.ndarray,
    char_end: Sequence[int] | np.ndarray,
    content: str = "numbers",
) -> np.ndarray:
    """Boolean mask over response tokens: True where a token overlaps a novel content span.

    A token [s, e) overlaps span [a, b) when s < b and e > a; zero-width tokens (special tokens,
    template suffixes) never overlap. With ``content="all"`` every token is content.
    """
    cs = np.asarray(char_start, dtype=np.int64)
    ce = np.asarray(char_end, dtype=np.int64)
    if cs.shape != ce.shape:
        raise ValueError(f"char_start and char_end differ in length ({cs.shape} vs {ce.shape})")
    if content == "all":
        return np.ones(cs.shape, dtype=bool)
    mask = np.zeros(cs.shape, dtype=bool)
    for a, b in novel_spans(question, response, content):
        mask |= (cs < b) & (ce > a)
    return mask
