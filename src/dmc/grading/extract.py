"""Final-answer extraction from a reasoning trace.

Forms, in order of preference (the first form present wins; within a form, the last occurrence):

1. ``boxed``        ``\\boxed{...}`` / ``\\fbox{...}`` with nested braces (the last non-empty one)
2. ``hash``         ``#### x`` (GSM8K style) on the last non-empty line (elsewhere ``####``
                    starts a Markdown heading)
3. ``answer-is``    "The answer is x", "Final answer: x", "answer: x" (case-insensitive), x up to
                    the end of the sentence or line (the next line when the marker ends its line)
4. ``last-number``  the last number in the text (integers, decimals, 1,234, a/b, 1e-3, 50%)
5. ``none``         nothing extractable: ``answer`` is None

Every extracted answer is cleaned by `clean_answer`: surrounding spaces, ``$``/``\\(...\\)``
delimiters, Markdown bold, a currency ``$`` and trailing punctuation are removed, and a plain
number's thousands separators are dropped (``1,234`` -> ``1234``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ExtractionMethod = Literal["boxed", "hash", "answer-is", "last-number", "none"]


@dataclass(frozen=True)
class Extraction:
    """An extracted final answer (None when none was found) and the form it came from."""

    answer: str | None
    method: ExtractionMethod


_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*")
_HASH_RE = re.compile(r"####[ \t]*([^\n]*)")
# "answer" (optionally "final answer"), Markdown emphasis allowed, then "is" and/or ":".
_ANSWER_IS_RE = re.compile(
    r"\b(?:final\s+)?answer[*_]*\s*(?:(?:is|was|would\s+be|will\s+be)\b[*_]*\s*:?|:)[*_]*[ \t]*",
    re.IGNORECASE,
)
# A sentence ends at a period followed by whitespace (a decimal point is followed by a digit).
_SENTENCE_END_RE = re.compile(r"\.(?=\s)")
_NUMBER_RE = re.compile(
    r"(?<![\w./])-?"
    r"(?:\d{1,3}(?:,\d{3})+(?!,?\d)|\d+)"  # 1,234,567 or 1234567
    r"(?:\.\d+)?"
    r"(?:/\d+(?:\.\d+)?(?!\.?\d))?"  # a/b
    r"(?:[eE][-+]?\d+)?"
    r"%?"
)
_THOUSANDS_RE = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?%?")
_DOLLAR_RE = re.compile(r"(?<!\\)\$")
_TRAILING_PUNCT = ".,;:!?"
_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"), ("__", "__"), ("`", "`"))
# Unicode look-alikes that tokenizers and teachers emit for ASCII math symbols.
_UNICODE_FIXES = str.maketrans({"\u2212": "-", "\u2013": "-", "\u00a0": " ", "\u2009": " ", "\u202f": " "})


def _balanced(text: str, open_at: int) -> int | None:
    """Index of the brace closing the one at `open_at`, or None when it never closes."""
    depth = 0
    i = open_at
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):  # \{ and \} are literal braces, not grouping
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _boxed_contents(text: str) -> list[str]:
    """Contents of every complete \\boxed{...} in order (an unclosed one, e.g. truncated, is skipped)."""
    out = []
    for m in _BOX_RE.finditer(text):
        start = m.end()
        if start < len(text) and text[start] == "{":
            end = _balanced(text, start)
            if end is not None:
                out.append(text[start + 1 : end])
        else:  # "\boxed 5": the argument is the next token
            tok = re.match(r"[^\s$]+", text[start:])
            if tok:
                out.append(tok.group(0))
    return out


def clean_answer(answer: str, keep_bang: bool = False) -> str:
    """Strip presentation from an answer: spaces, delimiters, bold, currency $, trailing punctuation,
    and thousands separators of a plain number (1,234 -> 1234). `keep_bang` keeps a trailing "!"
    (a factorial inside \\boxed{}, an exclamation mark in prose)."""
    punct = _TRAILING_PUNCT.replace("!", "") if keep_bang else _TRAILING_PUNCT
    s = answer.translate(_UNICODE_FIXES).strip()
    changed = True
    while changed and s:
        changed = False
        for left, right in _DELIMS:
            if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
                inner = s[len(left) : len(s) - len(right)]
                if left in inner or right in inner:  # "$a$ and $b$" is two spans, not one
                    continue
                s, changed = inner.strip(), True
        stripped = s.rstrip(punct).strip()
        if stripped != s:
            s, changed = stripped, True
        # A lone leading/trailing "$" is a currency sign or a half-open math delimiter.
        if s.startswith("\\$"):
            s, changed = s[2:].strip(), True
        elif len(_DOLLAR_RE.findall(s)) == 1 and (s.startswith("$") or s.endswith("$")):
            s, changed = s.strip("$").strip(), True
    s = s.replace("{,}", ",")
    if _THOUSANDS_RE.fullmatch(s):
        s = s.replace(",", "")
    return s


def _answer_is(text: str) -> str | None:
    """The text after the last "answer is"/"answer:" marker that has a non-empty answer."""
    for m in reversed(list(_ANSWER_IS_RE.finditer(text))):
        rest = text[m.end() :]
        line, _, after = rest.partition("\n")
        if not line.strip():  # "Final answer:\n42": the answer is on the next non-empty line
            line = next((ln for ln in after.split("\n") if ln.strip()), "")
        end = _SENTENCE_END_RE.search(line)
        if end:
            line = line[: end.start()]
        cand = clean_answer(line)
        if cand:
            return cand
    return None


def extract_answer(text: str) -> Extraction:
    """Extract the final answer of a trace (see the module docstring for the forms and order)."""
    if not isinstance(text, str):
        raise TypeError(f"extract_answer expects a str, got {type(text).__name__}")
    text = text.translate(_UNICODE_FIXES)
    for content in reversed(_boxed_contents(text)):
        cand = clean_answer(content, keep_bang=True)
        if cand:
            return Extraction(cand, "boxed")
    hashes = list(_HASH_RE.finditer(text))
    # Only a closing "#### x" line counts: elsewhere "####" is a Markdown heading.
    if hashes and not text[hashes[-1].end() :].strip():
        cand = clean_answer(hashes[-1].group(1))
        if cand:
            return Extraction(cand, "hash")
    cand = _answer_is(text)
    if cand:
        return Extraction(cand, "answer-is")
    numbers = _NUMBER_RE.findall(text)
    if numbers:
        return Extraction(clean_answer(numbers[-1]), "last-number")
    return Extraction(None, "none")
