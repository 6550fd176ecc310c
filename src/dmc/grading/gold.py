"""Reading golds: alternatives ("A, or equivalently B"), choice letters, yes/no, ordered lists,
and whether a free-form gold is an expression at all; plus gold-aware answer refinement."""

from __future__ import annotations

import re

from dmc.grading.extract import MATH_WORDS, clean_answer
from dmc.grading.normalize import normalize_text

# Separators between acceptable forms of one gold.
_ALT_SEP_RE = re.compile(
    r"\s*[,;]?\s*\b(?:(?:or\s+equivalently|equivalently|that\s+is|alternatively|"
    r"also\s+written\s+as|which\s+equals)\b|i\.e\.)[,:]?\s*",
    re.IGNORECASE,
)
_ALT_PAREN_RE = re.compile(r"^(.*\S)\s*\(\s*(?:or|equivalently|i\.e\.,?)\s+(.+)\)$", re.IGNORECASE)
_OR_RE = re.compile(r"\s*,?\s+or\s+")
_ANY_ORDER_RE = re.compile(r"\s*[,;(]?\s*\b(?:in\s+any\s+order|order\s+does\s+not\s+matter|unordered)\b\)?\s*$", re.I)
_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_CHOICE_RE = re.compile(r"^(?:(?:option|choice)\s*)?\(?([A-J])\)?$", re.IGNORECASE)
_CHOICE_START_RE = re.compile(r"^\**\s*(?:(?:option|choice)\s*)?(?:\(([A-J])\)|([A-J])(?=[.):]|\s|$))")
_CHOICE_TEXT_RE = re.compile(
    r"\b(?:option|choice|answer(?:\s+choice)?)\s*(?:is\s*)?:?\s*\**\s*\(?([A-J])\)?(?![\w])", re.IGNORECASE
)
_CHOICE_PAREN_RE = re.compile(r"\(([A-J])\)")
_YES_NO = ("yes", "no")
_WORD_RUN_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
_WORDS_RE = re.compile(r"[^\W\d_]{2,}(?:[ '\-][^\W\d_]+)*")


def _plain(s: str) -> str:
    s = clean_answer(s)
    for _ in range(3):
        s = _TEXT_WRAP_RE.sub(lambda m: m.group(1), s)
    return clean_answer(s)


def choice_letter(s: str) -> str | None:
    """The letter of a multiple-choice gold ("B", "(B)", "option C", "\\text{(D)}"), else None.
    A bare letter counts only in upper case (a lower-case one is a variable)."""
    p = _plain(s)
    m = _CHOICE_RE.fullmatch(p)
    if m is None:
        return None
    if len(p) == 1 and not p.isupper():
        return None
    return m.group(1).upper()


def yes_no(s: str) -> str | None:
    """"yes" / "no" for a yes/no gold, else None."""
    w = normalize_text(s)
    return w if w in _YES_NO else None


def answer_choice(answer: str | None, text: str) -> str | None:
    """The choice an answer (else the trace) gives: "(B)", "B.", "option C", "answer is D"."""
    if answer:
        m = _CHOICE_START_RE.match(_plain(answer))
        if m:
            return m.group(1) or m.group(2)
    found = list(_CHOICE_TEXT_RE.finditer(text))
    if found:
        return found[-1].group(1).upper()
    tail = text.strip().split("\n")[-1]
    found = list(_CHOICE_PAREN_RE.finditer(tail))
    return found[-1].group(1) if found else None


def answer_yes_no(answer: str | None, text: str) -> str | None:
    """"yes"/"no" when the answer (else the trace's last sentence opening with it) starts with it."""
    for cand in ([answer] if answer else []) + [
        s for s in reversed(re.split(r"(?<=[.!?])\s+|\n+", text)) if s.strip()
    ][:3]:
        m = re.match(r"^[\s*_]*(yes|no)\b", _plain(cand), re.IGNORECASE)
        if m:
            return m.group(1).lower()
    return None


def refine_for_gold(text: str, answer: str | None, gold: str | None) -> str | None:
    """The extracted answer, read for the gold's kind: a choice letter or yes/no."""
    if gold is None:
        return answer
    if choice_letter(gold) is not None:
        return answer_choice(answer, text) or answer
    if yes_no(gold) is not None:
        return answer_yes_no(answer, text) or answer
    return answer


def split_alternatives(gold: str) -> list[str]:
    """The acceptable forms of a gold: "A, or equivalently B", "A (or B)", "A, i.e. B", and
    "A or B" when neither side is plain words."""
    g = gold.strip()
    m = _ALT_PAREN_RE.match(g)
    if m:
        return split_alternatives(m.group(1)) + split_alternatives(m.group(2))
    parts = [p.strip() for p in _ALT_SEP_RE.split(g) if p and p.strip()]
    if len(parts) > 1:
        return [a for p in parts for a in split_alternatives(p)]
    ors = [p.strip() for p in _OR_RE.split(g)]
    if len(ors) > 1 and all(ors) and not any(_WORDS_RE.fullmatch(normalize_text(p)) for p in ors):
        return ors
    return [g]


def unordered_marker(gold: str) -> tuple[str, bool]:
    """The gold without an "(in any order)" note, and whether it had one."""
    m = _ANY_ORDER_RE.search(gold)
    return (gold[: m.start()].strip(), True) if m else (gold, False)


def is_expression(gold: str) -> bool:
    """True when a gold reads as math: no words (3+ letters) besides LaTeX commands, \\text{}
    units and function names. "sum_(i=1)^n i^2" and "n choose 4" are not expressions."""
    s = _TEXT_WRAP_RE.sub(" ", gold)
    return all(w.lower() in MATH_WORDS for w in _WORD_RUN_RE.findall(s))


_OPEN = {"[": "]", "(": ")"}


def split_list(s: str) -> tuple[list[str], str | None] | None:
    """The items of a list ("[3, 8, 1]", "(a, b, c)", "apple, banana, cherry") and its bracket
    ("[", "(" or None), or None when `s` is not a list of 2+ items at the top level. A set
    ``\\{...\\}`` is not a list (math-verify compares sets)."""
    t = clean_answer(s)
    bracket = None
    if len(t) >= 2 and t[0] in _OPEN and t[-1] == _OPEN[t[0]]:
        inner, bracket = t[1:-1], t[0]
    else:
        inner = t
    if inner.startswith("\\{"):
        return None
    items, cur, depth = [], "", 0
    for i, c in enumerate(inner):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return None
        if c == "," and depth == 0 and inner[i - 1 : i] != "\\":
            items.append(cur)
            cur = ""
        else:
            cur += c
    items.append(cur)
    items = [re.sub(r"^(?:and|or)\s+", "", x.strip()) for x in items]
    if len(items) < 2 or not all(items):
        return None
    return items, bracket
