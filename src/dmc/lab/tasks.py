"""Lab task families: procedurally generated multi-step problems with exact verifiers.

A problem is a start state and a list of operations; solving it means applying them in order.
Teachers (`dmc.lab.teachers`) render the same execution in different styles, so every family
exposes how to apply, render and corrupt one step. Generation is seeded by the caller's
`random.Random`, so a seed reproduces the same questions on any machine.

Families:
- `arith`: word problems with additions and subtractions ("Tom has 12 coins. He finds 5. ...").
- `listops`: list manipulation ("Start with the list [3, 8, 1]. Reverse it. Append 5. ...").
- `wordops`, `boolchain`, `bubblesort` (development families the lab students never saw): listops
  on animal names; a truth value through and / or / xor / not, answered true or false; a list sorted
  by bubble sort, one comparison per step (long traces).
- `cups` and `weekdays` (held out of every choice of defaults): a coin tracked under lettered cups
  through swaps, answered with a cup letter; a day of the week moved later and earlier by numbers of
  days, answered with a weekday's name.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

ANSWER_PREFIX = "The answer is "
_ANSWER_RE = re.compile(r"The answer is (.+?)\.?\s*$", re.MULTILINE)

Op = tuple[Any, ...]
State = Any


@dataclass(frozen=True)
class Distribution:
    """A question distribution: how many operations and how large the numbers / lists are."""

    name: str
    steps: tuple[int, int]  # inclusive range of the number of operations
    size: tuple[int, ...]  # arith: digits of the operands; listops: start list lengths


@dataclass(frozen=True)
class Problem:
    """One generated question with its executable solution."""

    family: str
    question: str
    start: State
    ops: tuple[Op, ...]
    gold: str
    distribution: str
    size: int
    subject: dict[str, str] = field(default_factory=dict, compare=False)


def extract_answer(text: str) -> str | None:
    """The final answer of a trace: the text after the last "The answer is", without the period.

    None when the trace has no final-answer line (incomplete or truncated trace).
    """
    found = _ANSWER_RE.findall(text)
    if not found:
        return None
    return found[-1].strip()


class TaskFamily:
    """Interface of a task family; subclasses define the domain."""

    name: str = ""
    description: str = ""
    distributions: dict[str, Distribution] = {}

    # --- generation -----------------------------------------------------------------------
    def sample(self, rng: random.Random, dist: Distribution) -> Problem:
        raise NotImplementedError

    def apply(self, state: State, op: Op) -> State:
        raise NotImplementedError

    def solve(self, problem: Problem) -> list[State]:
        """The states after each operation (last = final answer state)."""
        states, s = [], problem.start
        for op in problem.ops:
            s = self.apply(s, op)
            states.append(s)
        return states

    def corrupt(self, state: State, rng: random.Random) -> State:
        """A plausible wrong result for a step (different from `state`)."""
        raise NotImplementedError

    def valid(self, state: State) -> bool:
        """Whether a state can occur in a well-formed trace (e.g. counts are not negative)."""
        return True

    # --- rendering ------------------------------------------------------------------------
    def fmt_state(self, state: State) -> str:
        raise NotImplementedError

    def fmt_step(self, before: State, ops: list[Op], after: State) -> str:
        """One line applying `ops` (one, or several for skip-step traces) to `before`."""
        raise NotImplementedError

    def describe_op(self, op: Op) -> str:
        """The operation in words, as in the question."""
        raise NotImplementedError

    def fmt_op(self, op: Op) -> str:
        """The operation in the traces' notation ("+ 5", "reverse")."""
        return self.describe_op(op)

    def sentence(self, problem: Problem, i: int) -> str:
        """The question's sentence that states operation `i` (without its final period)."""
        raise NotImplementedError

    def quote_step(self, problem: Problem, i: int, before: State, after: State) -> str:
        """One step that first quotes the question's sentence, then computes it."""
        return f"{self.sentence(problem, i)}: {self.fmt_step(before, [problem.ops[i]], after)}"

    def explain_step(self, before: State, op: Op, after: State) -> str:
        """One step in a sentence, for verbose traces."""
        return f"we {self.describe_op(op)}, so {self.fmt_step(before, [op], after)}"

    # --- grading --------------------------------------------------------------------------
    def canonical(self, answer: str) -> Any | None:
        """The answer parsed to a comparable value, or None when it is not well-formed."""
        raise NotImplementedError

    def verify(self, answer: str | None, gold: str) -> bool:
        """Exact verification: True iff `answer` parses and equals `gold`.

        A missing or malformed answer is wrong (False); a malformed gold raises ValueError.
        """
        g = self.canonical(gold)
        if g is None:
            raise ValueError(f"{self.name}: gold answer {gold!r} is not well-formed")
        if answer is None:
            return False
        return self.canonical(answer) == g


# ----------------------------------------------------------------------------------------
# arith: multi-step arithmetic word problems
# ----------------------------------------------------------------------------------------

_NAMES = [("Tom", "He"), ("Ann", "She"), ("Max", "He"), ("Eva", "She"), ("Sam", "He"), ("Mia", "She")]
_ITEMS = ["coins", "apples", "cards", "stamps", "shells", "books"]
_GAIN = ["finds", "gets", "buys"]
_LOSS = ["loses", "gives away", "sells"]
_INT_RE = re.compile(r"^-?\d+$")


class Arith(TaskFamily):
    name = "arith"
    description = "word problems: a count changed by several additions and subtractions"
    distributions = {
        "easy": Distribution("easy", (1, 2), (1,)),
        "standard": Distribution("standard", (1, 4), (1, 2)),
        "hard": Distribution("hard", (3, 5), (2,)),
    }

    def _num(self, rng: random.Random, digits: int) -> int:
        # two-digit problems still mix in some one-digit operands, as real word problems do
        if digits == 1 or rng.random() < 0.3:
            return rng.randint(1, 9)
        return rng.randint(10, 49)

    def sample(self, rng: random.Random, dist: Distribution) -> Problem:
        n_ops = rng.randint(*dist.steps)
        digits = rng.choice(dist.size)
        name, pron = rng.choice(_NAMES)
        item = rng.choice(_ITEMS)
        start = max(2, self._num(rng, digits))  # "has 1 coins" reads wrong
        state, ops = start, []
        for _ in range(n_ops):
            n = self._num(rng, digits)
            if n <= state and rng.random() < 0.5:  # counts never go negative
                ops.append(("-", n, rng.choice(_LOSS)))
                state -= n
            else:
                ops.append(("+", n, rng.choice(_GAIN)))
                state += n
        sents = [f"{name} has {start} {item}."] + [f"{pron} {verb} {n}." for _, n, verb in ops]
        question = " ".join(sents) + f" How many {item} does {name} have now?"
        return Problem(self.name, question, start, tuple(ops), str(state), dist.name, digits,
                       {"name": name, "pronoun": pron, "item": item})

    def sentence(self, problem: Problem, i: int) -> str:
        _, n, verb = problem.ops[i]
        return f"{problem.subject['pronoun']} {verb} {n}"

    def apply(self, state: int, op: Op) -> int:
        return state + op[1] if op[0] == "+" else state - op[1]

    def corrupt(self, state: int, rng: random.Random) -> int:
        for _ in range(10):
            wrong = state + rng.choice([-10, -2, -1, 1, 2, 10])
            if wrong >= 0:
                return wrong
        return state + 1

    def valid(self, state: int) -> bool:
        return state >= 0

    def fmt_state(self, state: int) -> str:
        return str(state)

    def fmt_step(self, before: int, ops: list[Op], after: int) -> str:
        return f"{before} " + " ".join(f"{o[0]} {o[1]}" for o in ops) + f" = {after}"

    def describe_op(self, op: Op) -> str:
        return f"{'add' if op[0] == '+' else 'subtract'} {op[1]}"

    def fmt_op(self, op: Op) -> str:
        return f"{op[0]} {op[1]}"

    def canonical(self, answer: str) -> int | None:
        a = answer.strip().rstrip(".").replace(",", "").strip()
        return int(a) if _INT_RE.match(a) else None


# ----------------------------------------------------------------------------------------
# listops: list manipulation
# ----------------------------------------------------------------------------------------

_LIST_RE = re.compile(r"^\[\s*(\d+(\s*,\s*\d+)*)?\s*\]$")


class ListOps(TaskFamily):
    name = "listops"
    description = "a list of digits transformed by reverse / sort / append / remove operations"
    distributions = {
        "easy": Distribution("easy", (1, 2), (2, 3)),
        "standard": Distribution("standard", (1, 4), (2, 3, 4)),
        "hard": Distribution("hard", (3, 5), (4, 5)),
    }
    _KINDS = ["reverse", "sort", "append", "remove_first", "remove_last", "swap"]

    def sample(self, rng: random.Random, dist: Distribution) -> Problem:
        n_ops = rng.randint(*dist.steps)
        length = rng.choice(dist.size)
        start = tuple(rng.randint(0, 9) for _ in range(length))
        state, ops = start, []
        for _ in range(n_ops):
            kinds = [k for k in self._KINDS if not (k.startswith("remove") and len(state) <= 2)]
            if len(state) >= 6:  # keep traces short
                kinds.remove("append")
            kind = rng.choice(kinds)
            op: Op = ("append", rng.randint(0, 9)) if kind == "append" else (kind,)
            ops.append(op)
            state = self.apply(state, op)
        sents = [f"Start with the list {self.fmt_state(start)}."] + [self._sentence(op) for op in ops]
        question = " ".join(sents) + " What is the list now?"
        return Problem(self.name, question, start, tuple(ops), self.fmt_state(state), dist.name, length)

    def sentence(self, problem: Problem, i: int) -> str:
        return self._sentence(problem.ops[i]).rstrip(".")

    def quote_step(self, problem: Problem, i: int, before: tuple[int, ...], after: tuple[int, ...]) -> str:
        return f"{self.sentence(problem, i)}: {self.fmt_state(after)}"

    def _sentence(self, op: Op) -> str:
        return {
            "reverse": "Reverse it.",
            "sort": "Sort it.",
            "remove_first": "Remove the first item.",
            "remove_last": "Remove the last item.",
            "swap": "Swap the first and last items.",
        }.get(op[0]) or f"Append {op[1]}."

    def apply(self, state: tuple[int, ...], op: Op) -> tuple[int, ...]:
        k = op[0]
        if k == "reverse":
            return state[::-1]
        if k == "sort":
            return tuple(sorted(state))
        if k == "append":
            return (*state, op[1])
        if k == "remove_first":
            return state[1:]
        if k == "remove_last":
            return state[:-1]
        if k == "swap":
            return (state[-1], *state[1:-1], state[0]) if len(state) > 1 else state
        raise ValueError(f"listops: unknown operation {op!r}")

    def corrupt(self, state: tuple[int, ...], rng: random.Random) -> tuple[int, ...]:
        s = list(state)
        for _ in range(10):
            if len(s) >= 2 and rng.random() < 0.5:  # swap two neighbours
                i = rng.randrange(len(s) - 1)
                s[i], s[i + 1] = s[i + 1], s[i]
            else:  # change one digit
                i = rng.randrange(len(s))
                s[i] = (s[i] + rng.choice([1, 2, 8, 9])) % 10
            if tuple(s) != state:
                return tuple(s)
        return (*state, 0)

    def fmt_state(self, state: tuple[int, ...]) -> str:
        return "[" + ", ".join(map(str, state)) + "]"

    def describe_op(self, op: Op) -> str:
        return {
            "reverse": "reverse",
            "sort": "sort",
            "remove_first": "remove first",
            "remove_last": "remove last",
            "swap": "swap ends",
        }.get(op[0]) or f"append {op[1]}"

    def explain_step(self, before: tuple[int, ...], op: Op, after: tuple[int, ...]) -> str:
        return f"we {self.describe_op(op)}, so the list becomes {self.fmt_state(after)}"

    def fmt_step(self, before: tuple[int, ...], ops: list[Op], after: tuple[int, ...]) -> str:
        return ", ".join(self.describe_op(o) for o in ops) + f": {self.fmt_state(after)}"

    def canonical(self, answer: str) -> tuple[int, ...] | None:
        a = answer.strip().rstrip(".").strip()
        if not _LIST_RE.match(a):
            return None
        inner = a[1:-1].strip()
        return tuple(int(x) for x in inner.split(",")) if inner else ()


# ----------------------------------------------------------------------------------------
# wordops: listops over words — the answer is an ordering of known items, not a computed number
# ----------------------------------------------------------------------------------------

# Alphabetical, so that sorting the indices sorts the words.
_WORDS = ("ant", "bee", "cat", "dog", "elk", "fox", "gnu", "hen", "owl", "yak")
_WORD_LIST_RE = re.compile(r"^\[\s*([a-z]+(\s*,\s*[a-z]+)*)?\s*\]$")


class WordOps(ListOps):
    """The list operations of listops on a list of animal names. Nothing in a trace is a new number:
    every item is copied from the question, and what a step derives is the new order."""

    name = "wordops"
    description = "a list of animal names transformed by reverse / sort (alphabetical) / append / remove operations"

    def fmt_state(self, state: tuple[int, ...]) -> str:
        return "[" + ", ".join(_WORDS[i] for i in state) + "]"

    def _sentence(self, op: Op) -> str:
        return f"Append {_WORDS[op[1]]}." if op[0] == "append" else super()._sentence(op)

    def describe_op(self, op: Op) -> str:
        return f"append {_WORDS[op[1]]}" if op[0] == "append" else super().describe_op(op)

    def canonical(self, answer: str) -> tuple[int, ...] | None:
        a = answer.strip().rstrip(".").strip()
        if not _WORD_LIST_RE.match(a):
            return None
        inner = a[1:-1].strip()
        words = [w.strip() for w in inner.split(",")] if inner else []
        if any(w not in _WORDS for w in words):
            return None
        return tuple(_WORDS.index(w) for w in words)


# ----------------------------------------------------------------------------------------
# boolchain: logic — a truth value through a chain of connectives; the answer is a verdict
# ----------------------------------------------------------------------------------------

_TRUTH = ("false", "true")


class BoolChain(TaskFamily):
    """A truth value combined, left to right, with AND / OR / XOR / NOT. The answer is a verdict
    (true or false): nothing in a trace is a number, and the two values recur in every step, so what
    a step decides is which of them comes next."""

    name = "boolchain"
    description = "a truth value combined left to right with and / or / xor / not; the answer is true or false"
    distributions = {
        "easy": Distribution("easy", (1, 3), (1,)),
        "standard": Distribution("standard", (2, 6), (1,)),
        "hard": Distribution("hard", (6, 9), (1,)),
    }
    _KINDS = ("and", "or", "xor", "not")

    def sample(self, rng: random.Random, dist: Distribution) -> Problem:
        start = rng.random() < 0.5
        ops: list[Op] = []
        for _ in range(rng.randint(*dist.steps)):
            kind = rng.choice(self._KINDS)
            ops.append((kind,) if kind == "not" else (kind, rng.random() < 0.5))
        state = start
        for op in ops:
            state = self.apply(state, op)
        sents = [f"Start with {self.fmt_state(start)}."] + [f"{self._sentence(op)}." for op in ops]
        question = " ".join(sents) + " Is the result true or false?"
        return Problem(self.name, question, start, tuple(ops), self.fmt_state(state), dist.name, 1)

    def _sentence(self, op: Op) -> str:
        return "Negate it" if op[0] == "not" else f"{op[0].upper()} it with {self.fmt_state(op[1])}"

    def sentence(self, problem: Problem, i: int) -> str:
        return self._sentence(problem.ops[i])

    def apply(self, state: bool, op: Op) -> bool:
        k = op[0]
        if k == "not":
            return not state
        if k == "and":
            return state and op[1]
        if k == "or":
            return state or op[1]
        if k == "xor":
            return state != op[1]
        raise ValueError(f"boolchain: unknown operation {op!r}")

    def corrupt(self, state: bool, rng: random.Random) -> bool:
        return not state

    def fmt_state(self, state: bool) -> str:
        return _TRUTH[bool(state)]

    def fmt_op(self, op: Op) -> str:
        return "not" if op[0] == "not" else f"{op[0]} {self.fmt_state(op[1])}"

    def describe_op(self, op: Op) -> str:
        return "negate it" if op[0] == "not" else f"{op[0]} it with {self.fmt_state(op[1])}"

    def fmt_step(self, before: bool, ops: list[Op], after: bool) -> str:
        expr = self.fmt_state(before)
        for op in ops:
            expr = f"not ({expr})" if op[0] == "not" else f"{expr} {op[0]} {self.fmt_state(op[1])}"
        return f"{expr} = {self.fmt_state(after)}"

    def canonical(self, answer: str) -> bool | None:
        a = answer.strip().rstrip(".").strip().lower()
        return _TRUTH.index(a) == 1 if a in _TRUTH else None


# ----------------------------------------------------------------------------------------
# bubblesort: long traces — an algorithm executed comparison by comparison
# ----------------------------------------------------------------------------------------


class BubbleSort(ListOps):
    """A list of digits sorted by bubble sort: passes from left to right, each comparison swapping
    two neighbours that are out of order, until a pass makes no swap. A step is one comparison and
    writes the whole list again, so a derivation runs to hundreds of tokens from a short question;
    what a step decides is whether to swap, and a wrong step can be undone by a later pass (the noisy
    teacher redraws until the final answer is wrong)."""

    name = "bubblesort"
    description = "a list of digits sorted by bubble sort, one line per comparison; the answer is the sorted list"
    distributions = {
        # comparisons (steps) follow from the list; lengths keep a question and its longest trace
        # within the lab students' 512-token context
        "easy": Distribution("easy", (5, 6), (4,)),
        "standard": Distribution("standard", (7, 10), (5,)),
        "hard": Distribution("hard", (15, 15), (6,)),  # every pass runs
    }

    def sample(self, rng: random.Random, dist: Distribution) -> Problem:
        length = rng.choice(dist.size)
        while True:  # redraw until the sort takes a number of comparisons in the distribution's range
            start = tuple(rng.randint(0, 9) for _ in range(length))
            ops, state = self._comparisons(start)
            if start != state and dist.steps[0] <= len(ops) <= dist.steps[1]:  # a sorted list needs no reasoning
                break
        question = f"Sort the list {self.fmt_state(start)} by bubble sort. What is the sorted list?"
        return Problem(self.name, question, start, tuple(ops), self.fmt_state(state), dist.name, length)

    def _comparisons(self, start: tuple[int, ...]) -> tuple[list[Op], tuple[int, ...]]:
        """Bubble sort's comparisons ("cmp", position, pass), and the sorted list they end with: pass p
        compares the first n - p pairs, and the sort stops after a pass without a swap."""
        ops: list[Op] = []
        state = start
        for n_pass in range(1, len(start)):
            before = state
            for j in range(len(start) - n_pass):
                ops.append(("cmp", j, n_pass))
                state = self.apply(state, ops[-1])
            if state == before:
                break
        return ops, state

    def apply(self, state: tuple[int, ...], op: Op) -> tuple[int, ...]:
        if op[0] != "cmp":
            raise ValueError(f"bubblesort: unknown operation {op!r}")
        j = op[1]
        if state[j] <= state[j + 1]:
            return state
        return (*state[:j], state[j + 1], state[j], *state[j + 2:])

    def sentence(self, problem: Problem, i: int) -> str:
        _, j, n_pass = problem.ops[i]
        return f"Pass {n_pass}, pair {j + 1}"

    quote_step = TaskFamily.quote_step  # the comparison's place, then the comparison

    def describe_op(self, op: Op) -> str:
        return f"compare positions {op[1] + 1} and {op[1] + 2}"

    def _compare(self, state: tuple[int, ...], op: Op) -> str:
        a, b = state[op[1]], state[op[1] + 1]
        return f"compare {a} and {b}: {'swap' if a > b else 'keep'}"

    def fmt_step(self, before: tuple[int, ...], ops: list[Op], after: tuple[int, ...]) -> str:
        parts, s = [], before
        for op in ops:
            parts.append(self._compare(s, op))
            s = self.apply(s, op)
        return ", ".join(parts) + f", {self.fmt_state(after)}"

    def explain_step(self, before: tuple[int, ...], op: Op, after: tuple[int, ...]) -> str:
        a, b = before[op[1]], before[op[1] + 1]
        return f"{a} {'>' if a > b else '<='} {b}, so we {'swap' if a > b else 'keep'}: {self.fmt_state(after)}"


# ----------------------------------------------------------------------------------------
# cups: state tracking — a coin followed under cups through swaps; the answer is a choice
# ----------------------------------------------------------------------------------------

_CUPS = "ABCDE"


class Cups(TaskFamily):
    """A coin under one of several cups, lettered A, B, C...; the cups are swapped in pairs and the
    question asks which cup the coin is under. The answer is a chosen option (a letter): nothing is
    computed, every letter is on the page from the start, and what a step decides is whether the
    swap moves the coin and where."""

    name = "cups"
    description = "a coin tracked under lettered cups through pairwise swaps; the answer is a cup letter"
    distributions = {
        "easy": Distribution("easy", (1, 3), (3,)),
        "standard": Distribution("standard", (3, 6), (3, 4)),
        "hard": Distribution("hard", (7, 10), (5,)),
    }

    def sample(self, rng: random.Random, dist: Distribution) -> Problem:
        n_cups = rng.choice(dist.size)
        start = rng.randrange(n_cups)
        ops: list[Op] = [("swap", *sorted(rng.sample(range(n_cups), 2))) for _ in range(rng.randint(*dist.steps))]
        state = start
        for op in ops:
            state = self.apply(state, op)
        cups = ", ".join(_CUPS[: n_cups - 1]) + f" and {_CUPS[n_cups - 1]}"
        sents = [f"There are cups {cups}, and a coin is under cup {_CUPS[start]}."]
        sents += [f"{self._sentence(op)}." for op in ops]
        question = " ".join(sents) + " Which cup is the coin under now?"
        return Problem(self.name, question, start, tuple(ops), self.fmt_state(state), dist.name, n_cups)

    def _sentence(self, op: Op) -> str:
        return f"Swap cups {_CUPS[op[1]]} and {_CUPS[op[2]]}"

    def sentence(self, problem: Problem, i: int) -> str:
        return self._sentence(problem.ops[i])

    def quote_step(self, problem: Problem, i: int, before: int, after: int) -> str:
        return f"{self.sentence(problem, i)}: {self.fmt_state(after)}"

    def apply(self, state: int, op: Op) -> int:
        if op[0] != "swap":
            raise ValueError(f"cups: unknown operation {op!r}")
        return op[2] if state == op[1] else op[1] if state == op[2] else state

    def corrupt(self, state: int, rng: random.Random) -> int:
        # every question has cups A, B and C, so a wrong cup among them always exists
        return rng.choice([c for c in range(3) if c != state])

    def fmt_state(self, state: int) -> str:
        return _CUPS[state]

    def fmt_op(self, op: Op) -> str:
        return f"swap {_CUPS[op[1]]} and {_CUPS[op[2]]}"

    def describe_op(self, op: Op) -> str:
        return f"swap cups {_CUPS[op[1]]} and {_CUPS[op[2]]}"

    def fmt_step(self, before: int, ops: list[Op], after: int) -> str:
        return ", ".join(self.fmt_op(op) for op in ops) + f": {self.fmt_state(after)}"

    def explain_step(self, before: int, op: Op, after: int) -> str:
        where = f"moves to {self.fmt_state(after)}" if after != before else f"stays under {self.fmt_state(after)}"
        return f"we {self.describe_op(op)}, so the coin {where}"

    def canonical(self, answer: str) -> int | None:
        a = answer.strip().rstrip(".").strip().upper()
        return _CUPS.index(a) if len(a) == 1 and a in _CUPS else None


# ----------------------------------------------------------------------------------------
# weekdays: calendar arithmetic — a day moved by numbers of days; the answer is a weekday's name
# ----------------------------------------------------------------------------------------

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _days(k: int) -> str:
    return f"{k} day" if k == 1 else f"{k} days"


class Weekdays(TaskFamily):
    """A meeting on some day of the week is moved later and earlier by whole numbers of days; the
    question asks its weekday now. A step computes modulo 7 on numbers read from the question and
    writes a name, so what a trace derives is a word chosen among seven, never a number."""

    name = "weekdays"
    description = "a weekday moved later and earlier by numbers of days; the answer is a weekday's name"
    distributions = {  # size: the largest move, in days
        "easy": Distribution("easy", (1, 2), (3,)),
        "standard": Distribution("standard", (2, 4), (9,)),
        "hard": Distribution("hard", (5, 8), (20,)),
    }

    def sample(self, rng: random.Random, dist: Distribution) -> Problem:
        most = dist.size[0]
        start = rng.randrange(7)
        ops: list[Op] = [(rng.choice(("later", "earlier")), rng.randint(1, most))
                         for _ in range(rng.randint(*dist.steps))]
        state = start
        for op in ops:
            state = self.apply(state, op)
        sents = [f"A meeting is on {_DAYS[start]}."] + [f"{self._sentence(op)}." for op in ops]
        question = " ".join(sents) + " On which day of the week is the meeting now?"
        return Problem(self.name, question, start, tuple(ops), self.fmt_state(state), dist.name, most)

    def _sentence(self, op: Op) -> str:
        return f"It is moved {_days(op[1])} {op[0]}"

    def sentence(self, problem: Problem, i: int) -> str:
        return self._sentence(problem.ops[i])

    def apply(self, state: int, op: Op) -> int:
        if op[0] not in ("later", "earlier"):
            raise ValueError(f"weekdays: unknown operation {op!r}")
        return (state + (op[1] if op[0] == "later" else -op[1])) % 7

    def corrupt(self, state: int, rng: random.Random) -> int:
        return rng.choice([d for d in range(7) if d != state])

    def fmt_state(self, state: int) -> str:
        return _DAYS[state]

    def fmt_op(self, op: Op) -> str:
        return f"{'+' if op[0] == 'later' else '-'} {op[1]}"

    def describe_op(self, op: Op) -> str:
        return f"move it {_days(op[1])} {op[0]}"

    def fmt_step(self, before: int, ops: list[Op], after: int) -> str:
        return f"{self.fmt_state(before)} " + " ".join(self.fmt_op(op) for op in ops) + f" = {self.fmt_state(after)}"

    def explain_step(self, before: int, op: Op, after: int) -> str:
        return f"we {self.describe_op(op)}, so it is on {self.fmt_state(after)}"

    def canonical(self, answer: str) -> int | None:
        a = answer.strip().rstrip(".").strip().capitalize()
        return _DAYS.index(a) if a in _DAYS else None


# ----------------------------------------------------------------------------------------
# letters: string manipulation — a made-up word rewritten letter by letter; the answer is the word
# ----------------------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_LETTERS_RE = re.compile(r"^[a-z]+$")


class Letters(TaskFamily):
    """A made-up word (random letters) rewritten by reverse / drop the first or last letter / add a
    letter at the end / swap the first and last letters; the question asks for the word at the end.
    Symbolic manipulation: a step derives a new string of known letters in a new order, nothing
    is computed, and the answer is a word no dictionary holds."""

    name = "letters"
    description = "a made-up word rewritten by letter operations; the answer is the final word"
    distributions = {  # size: letters in the starting word
        "easy": Distribution("easy", (1, 2), (3, 4)),
        "standard": Distribution("standard", (2, 4), (4, 5)),
        "hard": Distribution("hard", (5, 7), (6, 7)),
    }
    _KINDS = ("reverse", "drop_first", "drop_last", "append", "swap")

    def sample(self, rng: random.Random, dist: Distribution) -> Problem:
        length = rng.choice(dist.size)
        start = "".join(rng.choice(_LETTERS) for _ in range(length))
        state, ops = start, []
        for _ in range(rng.randint(*dist.steps)):
            kinds = [k for k in self._KINDS if not (k.startswith("drop") and len(state) <= 2)
                     and not (k == "append" and len(state) >= 8)]
            kind = rng.choice(kinds)
            op: Op = ("append", rng.choice(_LETTERS)) if kind == "append" else (kind,)
            ops.append(op)
            state = self.apply(state, op)
        sents = [f"Start with the letters {start}."] + [f"{self._sentence(op)}." for op in ops]
        question = " ".join(sents) + " What are the letters now?"
        return Problem(self.name, question, start, tuple(ops), self.fmt_state(state), dist.name, length)

    def _sentence(self, op: Op) -> str:
        return {
            "reverse": "Reverse them",
            "drop_first": "Drop the first letter",
            "drop_last": "Drop the last letter",
            "swap": "Swap the first and last letters",
        }.get(op[0]) or f"Add {op[1]} at the end"

    def sentence(self, problem: Problem, i: int) -> str:
        return self._sentence(problem.ops[i])

    def quote_step(self, problem: Problem, i: int, before: str, after: str) -> str:
        return f"{self.sentence(problem, i)}: {after}"

    def apply(self, state: str, op: Op) -> str:
        k = op[0]
        if k == "reverse":
            return state[::-1]
        if k == "drop_first":
            return state[1:]
        if k == "drop_last":
            return state[:-1]
        if k == "append":
            return state + op[1]
        if k == "swap":
            return state[-1] + state[1:-1] + state[0] if len(state) > 1 else state
        raise ValueError(f"letters: unknown operation {op!r}")

    def corrupt(self, state: str, rng: random.Random) -> str:
        s = list(state)
        for _ in range(10):
            i = rng.randrange(len(s))
            if len(s) >= 2 and rng.random() < 0.5 and i < len(s) - 1:  # swap two neighbours
                s[i], s[i + 1] = s[i + 1], s[i]
            else:  # change one letter
                s[i] = rng.choice([c for c in _LETTERS if c != s[i]])
            if "".join(s) != state:
                return "".join(s)
        return state + "a"

    def valid(self, state: str) -> bool:
        return bool(state)

    def fmt_state(self, state: str) -> str:
        return state

    def describe_op(self, op: Op) -> str:
        return {
            "reverse": "reverse",
            "drop_first": "drop first",
            "drop_last": "drop last",
            "swap": "swap ends",
        }.get(op[0]) or f"add {op[1]}"

    def explain_step(self, before: str, op: Op, after: str) -> str:
        return f"we {self.describe_op(op)}, so the letters become {after}"

    def fmt_step(self, before: str, ops: list[Op], after: str) -> str:
        return ", ".join(self.describe_op(o) for o in ops) + f": {after}"

    def canonical(self, answer: str) -> str | None:
        a = answer.strip().rstrip(".").strip().lower()
        return a if _LETTERS_RE.match(a) else None


# ----------------------------------------------------------------------------------------
# parity: a rule applied repeatedly, its branch chosen by the number's parity (control flow)
# ----------------------------------------------------------------------------------------


class Parity(TaskFamily):
    """A number and a rule applied a given number of times: halve the number when it is even, add
    an odd number when it is odd. The question states the rule once; which branch each step takes
    follows from the number the trace has reached (a program's execution, not a list of given
    operations, so a wrong step changes the branches after it), and the answer is the number at
    the end."""

    name = "parity"
    description = "a rule applied repeatedly, halving even numbers and adding to odd ones; the answer is the number"
    distributions = {  # size: the largest starting number
        "easy": Distribution("easy", (1, 2), (20,)),
        "standard": Distribution("standard", (3, 5), (50,)),
        "hard": Distribution("hard", (6, 8), (99,)),
    }

    def sample(self, rng: random.Random, dist: Distribution) -> Problem:
        times, add = rng.randint(*dist.steps), rng.choice((1, 3, 5, 7))
        start = rng.randint(2, dist.size[0])
        ops: tuple[Op, ...] = (("rule", add),) * times
        state = start
        for op in ops:
            state = self.apply(state, op)
        question = (f"Start with {start}. Apply this rule {times} time{'s' if times > 1 else ''}: if the number "
                    f"is even, halve it; if it is odd, add {add}. What is the number now?")
        return Problem(self.name, question, start, ops, self.fmt_state(state), dist.name, dist.size[0])

    def sentence(self, problem: Problem, i: int) -> str:
        before = problem.start if i == 0 else self.solve(problem)[i - 1]
        return "If the number is even, halve it" if before % 2 == 0 else f"If it is odd, add {problem.ops[i][1]}"

    def apply(self, state: int, op: Op) -> int:
        if op[0] != "rule":
            raise ValueError(f"parity: unknown operation {op!r}")
        return state // 2 if state % 2 == 0 else state + op[1]

    def corrupt(self, state: int, rng: random.Random) -> int:
        return max(0, state + rng.choice([-2, -1, 1, 2]))

    def valid(self, state: int) -> bool:
        return state >= 0

    def fmt_state(self, state: int) -> str:
        return str(state)

    def _branch(self, state: int, op: Op) -> str:
        return "/ 2" if state % 2 == 0 else f"+ {op[1]}"

    def describe_op(self, op: Op) -> str:
        return f"halve an even number, add {op[1]} to an odd one"

    def fmt_step(self, before: int, ops: list[Op], after: int) -> str:
        parts, s = [], before
        for op in ops:
            parts.append(self._branch(s, op))
            s = self.apply(s, op)
        return f"{before} " + " ".join(parts) + f" = {after}"

    def explain_step(self, before: int, op: Op, after: int) -> str:
        if before % 2 == 0:
            return f"{before} is even, so we halve it: {self.fmt_step(before, [op], after)}"
        return f"{before} is odd, so we add {op[1]}: {self.fmt_step(before, [op], after)}"

    def canonical(self, answer: str) -> int | None:
        a = answer.strip().rstrip(".").strip()
        return int(a) if _INT_RE.match(a) else None


# The families the lab students were pretrained on (their corpus and tokenizer derive from these;
# adding one here would change the shipped students).
TASK_FAMILIES: dict[str, TaskFamily] = {f.name: f for f in (Arith(), ListOps())}
# Development families the students never saw in pretraining.
DEV_FAMILIES: dict[str, TaskFamily] = {f.name: f for f in (WordOps(), BoolChain(), BubbleSort())}
# Held out: never used to choose or change a default, only to check a chosen one on a kind of
# task it was not chosen on (docs/DMC.md, "How the defaults were chosen").
HELD_OUT_FAMILIES: dict[str, TaskFamily] = {f.name: f for f in (Cups(), Weekdays(), Letters(), Parity())}
ALL_FAMILIES: dict[str, TaskFamily] = {**TASK_FAMILIES, **DEV_FAMILIES, **HELD_OUT_FAMILIES}


def get_family(name: str) -> TaskFamily:
    """The task family called `name`; a clear error lists the known ones."""
    try:
        return ALL_FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown lab task family {name!r}; known: {sorted(ALL_FAMILIES)}") from None


def verify(family: str, answer: str | None, gold: str) -> bool:
    """Exact verifier of a lab family: True iff `answer` equals `gold` (None/malformed → False)."""
    return get_family(family).verify(answer, gold)
