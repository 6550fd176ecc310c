"""Final-answer extraction from a reasoning trace.

Forms, in order of preference (the first form present wins; within a form, the last occurrence):

1. ``boxed``        ``\\boxed{...}`` / ``\\fbox{...}`` with nested braces (the last non-empty one)
2. ``hash``         ``#### x`` (GSM8K style) on the last non-empty line (elsewhere ``####``
                    starts a Markdown heading)
3. ``answer-is``    "The answer is x", "Final answer: x", "answer: x" (case-insensitive), x up to
                    the end of the sentence or line (the next line when the marker ends its line)
4. ``final-sentence`` a final-answer sentence among the last three sentences: one that opens
                    with "Therefore", "Thus", "So", "Hence", "In total", ... (or has ", so ...");
                    its answer is the last math item of the clause after the marker ("Thus
                    2^(n-1) strings." -> ``2^(n-1)``; "so there are 14 ways" -> ``14``), cut at
                    ", since/because/where/which ..."
5. ``last-expression`` / ``last-number``  the last number in the text (integers, decimals,
                    1,234, a/b, 1e-3, 50%), widened to the math it is part of: the ``$...$`` span
                    or the space-free expression token around it (``(n+1)^(n-1)``); a value after
                    a final ``=`` is taken alone (``12+5=17`` -> ``17``)
6. ``none``         nothing extractable: ``answer`` is None

A form whose answer equals the text's last number reports ``last-number``. For golds that are a
choice letter or yes/no, `refine_for_gold` then reads the choice / the yes-or-no from the text.

Every extracted answer is cleaned by `clean_answer`: surrounding spaces, ``$``/``\\(...\\)``
delimiters, Markdown bold, a currency ``$`` and trailing punctuation are removed, and a plain
number's thousands separators are dropped (``1,234`` -> ``1234``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ExtractionMethod = Literal[
    "boxed", "hash", "answer-is", "final-sentence", "last-expression", "last-number", "none"
]


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


# -- math items in prose ----------------------------------------------------------------------

# $$...$$, \(...\), \[...\], or $...$ whose content neither starts nor ends with a space and
# whose closing $ is not followed by a digit (so "$5 and $10" is two prices, not math).
_MATH_SPAN_RE = re.compile(
    r"\$\$(.+?)\$\$|\\\((.+?)\\\)|\\\[(.+?)\\\]|(?<![\\$])\$(?=[^\s$])((?:[^$\\]|\\.)*?[^\s$\\])\$(?!\d)",
    re.DOTALL,
)
# Letter runs of 3+ letters that are math, not words, in a plain-text expression.
MATH_WORDS = frozenset(
    "sqrt log ln sin cos tan sec csc cot exp arcsin arccos arctan sinh cosh tanh max min gcd lcm "
    "mod det inf infty oo".split()
)
_MATH_TOKEN_CHARS_RE = re.compile(r"[A-Za-z0-9^_(){}\[\]+\-*/=!.,\\|'<>% ]+")
_OPERATOR_RE = re.compile(r"[\^_(){}+*/=!\\]|(?<=[\w)])-(?=[\w(])")
_LETTER_RUN_RE = re.compile(r"(?<!\\)(?<![A-Za-z])[A-Za-z]{3,}")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|\n+")
_MARKER_START_RE = re.compile(
    r"^[\s*_#>-]*(?:therefore|thus|hence|so|consequently|altogether|overall|finally|"
    r"in\s+total|in\s+conclusion|in\s+all|this\s+gives|we\s+conclude(?:\s+that)?)\b[*_]*[,:]?\s*",
    re.IGNORECASE,
)
_MARKER_MID_RE = re.compile(r"[,;]\s*(?:and\s+)?(?:so|therefore|thus|hence)\b[,:]?\s*", re.IGNORECASE)
_CLAUSE_CUT_RE = re.compile(r",\s*(?:since|because|where|which|as)\b|\s(?:since|because)\s", re.IGNORECASE)
_FINAL_SENTENCES = 3


def _balanced_brackets(s: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for c in s:
        if c in "([{":
            stack.append(c)
        elif c in pairs:
            if not stack or stack.pop() != pairs[c]:
                return False
    return not stack


def is_math_token(tok: str) -> bool:
    """True when a plain-text token is math: only math characters, balanced brackets, no words
    (letter runs of 3+ that are not LaTeX commands or function names), and a digit or an operator."""
    if not tok or not _MATH_TOKEN_CHARS_RE.fullmatch(tok) or not _balanced_brackets(tok):
        return False
    if any(w.lower() not in MATH_WORDS for w in _LETTER_RUN_RE.findall(tok)):
        return False
    if re.search(r"\d", tok):
        return True
    # Without a digit, an operator other than "/" and "-" ("km/h" and "x-ray" are words).
    return bool(_OPERATOR_RE.search(tok.replace("/", " ").replace("-", " ")))


def _strip_token(tok: str) -> str:
    tok = tok.strip().strip("*")
    while tok and tok[-1] in ".,;:?":
        tok = tok[:-1]
    return tok


def _split_top(text: str) -> list[tuple[int, str]]:
    """Whitespace-separated tokens with their offsets, keeping bracketed groups
    (``n(n + 1)/2``) whole."""
    out: list[tuple[int, str]] = []
    cur, start, depth = "", 0, 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        if c.isspace() and depth == 0:
            if cur:
                out.append((start, cur))
            cur = ""
        else:
            if not cur:
                start = i
            cur += c
    if cur:
        out.append((start, cur))
    return out


def _after_equals(expr: str) -> str:
    """The part after the last top-level "=" (the value of ``12+5=17``, of ``x = 3``)."""
    depth, cut = 0, -1
    for i, c in enumerate(expr):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "=" and depth == 0 and expr[i - 1 : i] not in ("<", ">", "!") and expr[i + 1 : i + 2] != "=":
            cut = i
    rest = expr[cut + 1 :].strip() if cut >= 0 else expr
    return rest or expr


def _math_items(clause: str) -> list[str]:
    """Math items of a clause in order: ``$...$``-style spans and math tokens outside them."""
    items: list[tuple[int, str]] = []
    last = 0
    for m in _MATH_SPAN_RE.finditer(clause):
        items += _token_items(clause[last : m.start()], last)
        content = next(g for g in m.groups() if g is not None)
        items.append((m.start(), content))
        last = m.end()
    items += _token_items(clause[last:], last)
    return [_after_equals(clean_answer(it, keep_bang=True)) for _, it in sorted(items) if clean_answer(it)]


def _token_items(text: str, offset: int) -> list[tuple[int, str]]:
    out = []
    for pos, tok in _split_top(text):
        t = _strip_token(tok)
        if is_math_token(t):
            out.append((offset + pos, t))
    return out


def _final_sentence(text: str) -> str | None:
    """The answer of a final-answer sentence among the last few sentences (module docstring)."""
    sentences = [s for s in _SENTENCE_SPLIT_RE.split(text) if s.strip()][-_FINAL_SENTENCES:]
    for sent in reversed(sentences):
        m = _MARKER_START_RE.match(sent)
        if m is None:
            mids = list(_MARKER_MID_RE.finditer(sent))
            if not mids:
                continue
            m = mids[-1]
        clause = sent[m.end() :]
        cut = _CLAUSE_CUT_RE.search(clause)
        if cut:
            clause = clause[: cut.start()]
        items = _math_items(clause)
        if items:
            return items[-1]
    return None


def _last_expression(text: str) -> tuple[str, ExtractionMethod] | None:
    """The last number, widened to the math span or space-free math token it is part of."""
    numbers = list(_NUMBER_RE.finditer(text))
    if not numbers:
        return None
    num = numbers[-1]
    plain = clean_answer(num.group(0))
    for m in _MATH_SPAN_RE.finditer(text):
        if m.start() <= num.start() and num.end() <= m.end():
            content = next(g for g in m.groups() if g is not None)
            expr = _after_equals(clean_answer(content, keep_bang=True))
            return (expr, "last-number" if expr == plain else "last-expression")
    start = max(text.rfind(c, 0, num.start()) for c in " \t\n") + 1
    ends = [i for i in (text.find(c, num.end()) for c in " \t\n") if i >= 0]
    tok = _strip_token(text[start : min(ends) if ends else len(text)])
    if tok != num.group(0) and is_math_token(tok) and "$" not in tok:
        expr = _after_equals(clean_answer(tok, keep_bang=True))
        if expr and expr != plain:
            return (expr, "last-expression")
    return (plain, "last-number")


# "The answer is 2^(n-1) strings": a math item followed by words only is that item.
_TRAILING_WORDS_RE = re.compile(r"(?:\s+[A-Za-z][A-Za-z'\-]*)+\s*$")


def _drop_trailing_words(answer: str) -> str:
    m = _TRAILING_WORDS_RE.search(answer)
    if m is None or m.start() == 0:
        return answer
    head = answer[: m.start()].strip()
    spans = list(_MATH_SPAN_RE.finditer(head))
    if len(spans) == 1 and spans[0].start() == 0 and spans[0].end() == len(head):
        return clean_answer(head, keep_bang=True)
    if "$" not in head and is_math_token(head) and " " not in head and not re.fullmatch(r"[-\d.,/%]+", head):
        return head
    return answer


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
        return Extraction(_drop_trailing_words(cand), "answer-is")
    last = _last_expression(text)
    cand = _final_sentence(text)
    if cand and (last is None or cand != last[0]):
        return Extraction(cand, "final-sentence")
    if last is not None:
        return Extraction(*last)
    return Extraction(None, "none")
