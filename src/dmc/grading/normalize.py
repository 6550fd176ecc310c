"""String normalization for answers compared as text."""

from __future__ import annotations

import re

from dmc.grading.extract import clean_answer

_TEXT_RE = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_SPACING_RE = re.compile(r"\\[!,;: ]|\\left\b|\\right\b|\\displaystyle\b")
_FRAC_RE = re.compile(r"\\[dt]frac\b")
_WS_RE = re.compile(r"\s+")
# A space next to a non-word character carries no meaning ("x + 1" == "x+1"); between words it does.
_SPACE_AROUND_SYMBOL_RE = re.compile(r"\s*([^\w\s])\s*")


def compact(text: str) -> str:
    """Cleaned (see `clean_answer`) with all whitespace removed; case is kept."""
    return _WS_RE.sub("", clean_answer(text))


def normalize_text(text: str) -> str:
    """Case-folded, whitespace-collapsed text without delimiters, \\text{} wrappers, LaTeX spacing
    commands and a trailing period; \\dfrac/\\tfrac read as \\frac."""
    s = clean_answer(text)
    for _ in range(3):  # nested wrappers: \textbf{\text{x}}
        s = _TEXT_RE.sub(lambda m: m.group(1), s)
    s = _SPACING_RE.sub(" ", s)
    s = _FRAC_RE.sub(r"\\frac", s)
    s = _WS_RE.sub(" ", s).strip()
    s = _SPACE_AROUND_SYMBOL_RE.sub(r"\1", s)
    return clean_answer(s).casefold()
