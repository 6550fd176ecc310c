"""Content spans: the parts of a trace that carry newly derived content (DESIGN.md §3).

A content span is a number or mathematical expression (selector ``numbers``) or a word (selector
``words``) of the response whose normalized string has not appeared earlier — in the question or
earlier in the response. A bracketed list or tuple of numbers is one expression; when it is new,
its elements are the content (brackets and separators are format). These are the results the student must compute itself;
copied operands and boilerplate are excluded. ``all`` marks every response token.

``decisions`` (the general definition, docs/DMC.md) marks what the trace commits to: every unit (a
number or expression, or a word) that is a new value, or a known value in a new place — its pair
with the unit before it has not occurred earlier in the question or the trace (a new ordering of
known items, a chosen option, an operand read from the question). Boilerplate is recognised from
the pool itself: a word the dataset's traces use in at least a given share of them is format,
unless it is a value (a word of the pool's gold answers) or inside the trace's final answer.

``continuations`` marks every non-format unit that the text before it does not already show: new,
or following its context differently than the same context was followed before (a copy is what
looking back finds).

Pure functions over text and token offsets; no model involved. The masks and the boilerplate are
memoized (the curriculum re-scores the same probes every interval; only the student changes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from dmc.memo import Memo

CONTENT_SELECTORS = ("numbers", "words", "decisions", "continuations", "all")

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


# -- decisions ------------------------------------------------------------------------------

# A word starts with a letter (Unicode letters count) and runs over letters and digits ("x1" is a
# word, not a number); a math item is matched where no word is.
_UNIT_RE = re.compile(rf"(?P<word>[^\W\d_]\w*)|(?P<math>{_MATH_RE.pattern})")


def units(text: str) -> list[tuple[int, int, str, bool]]:
    """The units of ``text`` in order, as (char_start, char_end, normalized string, is_word).

    A unit is a word or a number / math expression (a list or tuple of numbers counts by its
    elements); punctuation and whitespace are format and belong to no unit.
    """
    out: list[tuple[int, int, str, bool]] = []
    for m in _UNIT_RE.finditer(text):
        if m.group("word") is not None:
            out.append((m.start(), m.end(), _norm_word(m.group()), True))
        else:
            out += [(a, b, _norm_math(text[a:b]), False) for a, b in _items(text, m.start(), m.end())]
    return out


MIN_FORMAT_TRACES = 3


def format_words(responses: Sequence[str], share: float, answers: Sequence[str] = ()) -> frozenset[str]:
    """The words that at least ``share`` of ``responses`` use (document frequency): a teacher's
    boilerplate, recognised from its own traces rather than from any word list.

    Values are never format, however often they occur: numbers, and the words the task's gold
    ``answers`` are made of (true/false, option letters, the items an answer orders).
    """
    return _format_words(tuple(responses), float(share), tuple(answers))


@lru_cache(maxsize=64)  # a key holds a whole dataset's responses
def _format_words(responses: tuple[str, ...], share: float, answers: tuple[str, ...]) -> frozenset[str]:
    if not responses:
        return frozenset()
    values = {u for a in answers if a for _, _, u, is_word in units(a) if is_word}
    counts: dict[str, int] = {}
    for r in responses:
        for w in {u for _, _, u, is_word in units(r) if is_word}:
            counts[w] = counts.get(w, 0) + 1
    # a word seen in fewer than MIN_FORMAT_TRACES traces cannot be told from content: small datasets
    # (a probe, a handful of rows) keep their words
    need = max(MIN_FORMAT_TRACES, share * len(responses))
    return frozenset(w for w, c in counts.items() if c >= need and w not in values)


_INT_RE = re.compile(r"\d+")
_LINE_OPEN_RE = re.compile(r"[\s(#*>-]*")


def enumerations(text: str, us: Sequence[tuple[int, int, str, bool]], boilerplate: frozenset[str]) -> set[int]:
    """Indices into ``us`` (the units of ``text``) of the numbers that count the trace's own steps.

    A number is a step number when it opens a line or follows a format word, and belongs to a run
    ``1, 2, ...`` of at least two numbers in the same place, each one more than the last that stood
    there: the ``1, 2, 3`` of "Step 1: ... Step 2: ..." or of a numbered list. Its value follows from
    the trace's layout, not from the task. A lone "is 1" is not a run.
    """
    runs: dict[str | None, list[int]] = {}  # per place, the run being read (indices into us)
    out: set[int] = set()
    for i, (a, _, u, is_word) in enumerate(us):
        if is_word or not _INT_RE.fullmatch(u):
            continue
        line_start = text.rfind("\n", 0, a) + 1
        if _LINE_OPEN_RE.fullmatch(text, line_start, a):
            place: str | None = None
        elif i > 0 and us[i - 1][3] and us[i - 1][2] in boilerplate:
            place = us[i - 1][2]
        else:
            continue
        n, run = int(u), runs.get(place)
        if run and n == int(us[run[-1]][2]) + 1:
            run.append(i)
            continue
        if run and len(run) >= 2:
            out.update(run)
        runs[place] = [i] if n == 1 else []
    for run in runs.values():
        if len(run) >= 2:
            out.update(run)
    return out


def decision_spans(question: str, response: str, boilerplate: frozenset[str] = frozenset(),
                   answer: tuple[int, int] | None = None, counters: bool = False) -> list[tuple[int, int]]:
    """Char spans of the units of ``response`` that the trace commits to.

    A unit is a decision when its string is new (not in the question, not earlier in the response)
    or when its pair with the previous non-format unit is new: a known item put in a new order, an
    operand read from the question, a chosen option. Repeats of earlier pairs, and a unit restated
    right after itself ("= 8. 8 - 2", "... 6. The answer is 6"), are copies. Words in
    ``boilerplate`` are format and skipped, except inside ``answer`` (the final answer's char span);
    with ``counters`` so are the trace's :func:`enumerations`.
    """
    def kept(us, ans, skip=frozenset()):
        return [u for j, u in enumerate(us) if not (j in skip or u[3] and u[2] in boilerplate)
                or (ans is not None and u[0] < ans[1] and u[1] > ans[0])]

    seen: set[str] = set()
    pairs: set[tuple[str | None, str]] = set()
    prev: str | None = None
    for _, _, u, _ in kept(units(question), None):
        seen.add(u)
        pairs.add((prev, u))
        prev = u
    out: list[tuple[int, int]] = []
    prev = None
    r_units = units(response)
    for a, b, u, _ in kept(r_units, answer, enumerations(response, r_units, boilerplate) if counters else frozenset()):
        if u not in seen or (u != prev and (prev, u) not in pairs):
            out.append((a, b))
        seen.add(u)
        pairs.add((prev, u))
        prev = u
    return out


# The longest context (in units) a copy is matched on: long enough that a repeated line is found
# whole, short enough that matching stays linear in the trace's length.
MAX_CONTEXT = 8
_BREAK_RE = re.compile(r"\n|\.(?=\s)")


def continuation_spans(question: str, response: str, boilerplate: frozenset[str] = frozenset(),
                       answer: tuple[int, int] | None = None, counters: bool = False) -> list[tuple[int, int]]:
    """Char spans of the units of ``response`` that the text before them does not already show.

    The question and the response are read as one sequence of units, boilerplate words included
    (they are context the student reads). A non-format unit is content unless it is a copy: its
    string occurred before, and the longest run of units just before it (up to ``MAX_CONTEXT``) that
    also occurred earlier was followed there by the same unit — the continuation a student finds
    by looking back, as an induction head does. A new value, an operand read into a new place, a
    result that differs from what the same context gave before, a chosen option, a verdict: all
    content. A line or phrase repeated from earlier, a value carried over a line or sentence break
    right after it was written (``= 17.`` then ``17 - 3``; ``14. The answer is 14``): copies. Unlike ``decisions`` it needs no notion of a restatement, so a task
    whose values are few (true/false, option letters) keeps its decisions. With ``counters`` the
    trace's :func:`enumerations` are format too.
    """
    q_units = units(question)
    seq = [u for _, _, u, _ in q_units]
    r_units = units(response)
    # last unit seen after each context of 1..MAX_CONTEXT units, by context length
    follow: list[dict[tuple[str, ...], str]] = [{} for _ in range(MAX_CONTEXT + 1)]
    seen: set[str] = set(seq)

    def record(upto: int) -> None:
        """Index the contexts that end just before position ``upto`` with the unit at ``upto``."""
        for k in range(1, min(MAX_CONTEXT, upto) + 1):
            follow[k][tuple(seq[upto - k:upto])] = seq[upto]

    for i in range(1, len(seq)):
        record(i)
    out: list[tuple[int, int]] = []
    last: tuple[str, int] | None = None  # the previous non-format unit of the response, and its end
    counted = enumerations(response, r_units, boilerplate) if counters else set()
    for j, (a, b, u, is_word) in enumerate(r_units):
        i = len(seq)
        in_answer = answer is not None and a < answer[1] and b > answer[0]
        fmt = (j in counted or is_word and u in boilerplate) and not in_answer
        if not fmt:
            predicted = None
            for k in range(min(MAX_CONTEXT, i), 0, -1):
                predicted = follow[k].get(tuple(seq[i - k:i]))
                if predicted is not None:
                    break
            # a value carried over a line or sentence break ("= 17.\n17 - 3", "14. The answer is 14")
            carried = last is not None and last[0] == u and _BREAK_RE.search(response, last[1], a) is not None
            if u not in seen or (predicted != u and not carried):
                out.append((a, b))
            last = (u, b)
        seen.add(u)
        seq.append(u)
        if i >= 1:
            record(i)
    return out


def answer_span(response: str, answer: str | None) -> tuple[int, int] | None:
    """The char span of the last occurrence of the extracted final ``answer`` in ``response``."""
    if not answer:
        return None
    at = response.rfind(answer)
    return None if at < 0 else (at, at + len(answer))


def content_token_mask(
    question: str,
    response: str,
    char_start: Sequence[int] | np.ndarray,
    char_end: Sequence[int] | np.ndarray,
    content: str = "numbers",
    boilerplate: frozenset[str] = frozenset(),
    answer: tuple[int, int] | None = None,
    counters: bool = False,
) -> np.ndarray:
    """Boolean mask over response tokens: True where a token overlaps a content span.

    A token [s, e) overlaps span [a, b) when s < b and e > a; zero-width tokens (special tokens,
    template suffixes) never overlap. With ``content="all"`` every token is content. ``boilerplate``,
    ``answer`` and ``counters`` are used by ``decisions`` and ``continuations`` only (see
    :func:`decision_spans`).
    """
    cs = np.asarray(char_start, dtype=np.int64)
    ce = np.asarray(char_end, dtype=np.int64)
    if cs.shape != ce.shape:
        raise ValueError(f"char_start and char_end differ in length ({cs.shape} vs {ce.shape})")
    if content == "all":
        return np.ones(cs.shape, dtype=bool)
    key = (question, response, cs.tobytes(), ce.tobytes(), content, boilerplate, answer, counters)
    mask = _MASKS.get(key)
    if mask is None:
        mask = _content_mask(question, response, cs, ce, content, boilerplate, answer, counters)
        mask.flags.writeable = False  # shared by every caller that asks for the same mask
        _MASKS.put(key, mask)
    return mask


_MASKS: Memo[np.ndarray] = Memo(4096)


def _content_mask(question: str, response: str, cs: np.ndarray, ce: np.ndarray, content: str,
                  boilerplate: frozenset[str], answer: tuple[int, int] | None, counters: bool) -> np.ndarray:
    mask = np.zeros(cs.shape, dtype=bool)
    if content == "decisions":
        spans = decision_spans(question, response, boilerplate, answer, counters)
    elif content == "continuations":
        spans = continuation_spans(question, response, boilerplate, answer, counters)
    else:
        spans = novel_spans(question, response, content)
    for a, b in spans:
        mask |= (cs < b) & (ce > a)
    return mask
