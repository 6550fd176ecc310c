"""Programmatic teachers: each renders a problem's execution as a full trace in one style.

Every trace ends with the line "The answer is X." — the answer the trace derived, which is the
gold answer except in noisy traces, where a wrong step propagates to a wrong answer.
A teacher is `fn(family, problem, rng, **params) -> Trace`; `rng` is the teacher's own seeded
stream, so the same questions get the same traces for the same seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from dmc.lab.tasks import ANSWER_PREFIX, Problem, State, TaskFamily


@dataclass(frozen=True)
class Trace:
    """A teacher's response, the answer it reached, and the index of its wrong step (or None)."""

    text: str
    answer: str
    wrong_step: int | None = None


@dataclass(frozen=True)
class Teacher:
    name: str
    description: str
    fn: Callable[..., Trace]
    params: dict[str, Any] = field(default_factory=dict)

    def __call__(self, family: TaskFamily, problem: Problem, rng: random.Random, **params: Any) -> Trace:
        return self.fn(family, problem, rng, **{**self.params, **params})


def _execute(family: TaskFamily, problem: Problem, rng: random.Random, wrong: int | None):
    befores, afters, s = [], [], problem.start
    for i, op in enumerate(problem.ops):
        befores.append(s)
        s = family.apply(s, op)
        if i == wrong:
            s = family.corrupt(s, rng)
        afters.append(s)
    return befores, afters


def _run(family: TaskFamily, problem: Problem, rng: random.Random, error_rate: float = 0.0):
    """Execute the problem; with probability `error_rate` one step's result is wrong and the
    later steps continue from it, so the final answer is wrong too. Returns (states before each
    op, states after, index of the wrong step or None)."""
    if not (error_rate > 0 and rng.random() < error_rate):
        return (*_execute(family, problem, rng, None), None)
    final = family.solve(problem)[-1]
    first = rng.randrange(len(problem.ops))
    # a corruption may be undone by a later step (a sort after a swap) or make a later state
    # invalid (a negative count): redraw it, and fall back to corrupting the last step
    for wrong in [first] * 20 + [len(problem.ops) - 1] * 20:
        befores, afters = _execute(family, problem, rng, wrong)
        if afters[-1] != final and all(family.valid(a) for a in afters):
            return befores, afters, wrong
    raise RuntimeError(f"{family.name}: could not corrupt a step of {problem.question!r}")


def _final(family: TaskFamily, state: State) -> str:
    return f"{ANSWER_PREFIX}{family.fmt_state(state)}."


def stepwise(family: TaskFamily, problem: Problem, rng: random.Random, error_rate: float = 0.0) -> Trace:
    """One line per operation with its intermediate result; `error_rate` > 0 makes it noisy."""
    befores, afters, wrong = _run(family, problem, rng, error_rate)
    lines = [f"Start with {family.fmt_state(problem.start)}."]
    lines += [family.fmt_step(b, [op], a) for b, op, a in zip(befores, problem.ops, afters)]
    lines.append(_final(family, afters[-1]))
    return Trace("\n".join(lines), family.fmt_state(afters[-1]), wrong)


def quoting(family: TaskFamily, problem: Problem, rng: random.Random) -> Trace:
    """Step by step, each line first quoting the question's sentence for that operation."""
    states = family.solve(problem)
    lines = [f"Start with {family.fmt_state(problem.start)}."]
    s = problem.start
    for i, a in enumerate(states):
        lines.append(family.quote_step(problem, i, s, a))
        s = a
    lines.append(_final(family, s))
    return Trace("\n".join(lines), family.fmt_state(s))


def terse(family: TaskFamily, problem: Problem, rng: random.Random, group: int = 2) -> Trace:
    """Skip-step: `group` operations per line, the intermediate results done "in the head"."""
    states = family.solve(problem)
    lines, s = [], problem.start
    for i in range(0, len(problem.ops), group):
        ops = list(problem.ops[i : i + group])
        after = states[i + len(ops) - 1]
        lines.append(family.fmt_step(s, ops, after))
        s = after
    lines.append(_final(family, s))
    return Trace("\n".join(lines), family.fmt_state(s))


def answer_only(family: TaskFamily, problem: Problem, rng: random.Random) -> Trace:
    """Just the final answer."""
    s = family.solve(problem)[-1]
    return Trace(_final(family, s), family.fmt_state(s))


def verbose(family: TaskFamily, problem: Problem, rng: random.Random) -> Trace:
    """Explains each step, then reflects: re-checks the last step before answering."""
    states = family.solve(problem)
    n = len(problem.ops)
    lines = [f"We start with {family.fmt_state(problem.start)} and there {'is' if n == 1 else 'are'} "
             f"{n} step{'s' if n > 1 else ''}."]
    s = problem.start
    for i, (op, a) in enumerate(zip(problem.ops, states), 1):
        lines.append(f"Step {i}: {family.explain_step(s, op, a)}.")
        s = a
    last_before = states[-2] if n > 1 else problem.start
    lines.append(f"Let me check the last step again: {family.fmt_step(last_before, [problem.ops[-1]], s)}. Yes.")
    lines.append(_final(family, s))
    return Trace("\n".join(lines), family.fmt_state(s))


_FILLER = [
    "Let us be careful here.",
    "This is an important step.",
    "We keep going.",
    "Nothing else changes.",
]


def redundant(family: TaskFamily, problem: Problem, rng: random.Random) -> Trace:
    """Long-winded: the same steps as stepwise wrapped in filler sentences, no new content."""
    states = family.solve(problem)
    lines = ["Let us think about this problem step by step.", f"At first we have {family.fmt_state(problem.start)}."]
    s = problem.start
    for op, a in zip(problem.ops, states):
        lines.append(f"{family.fmt_step(s, [op], a)}. {rng.choice(_FILLER)}")
        s = a
    lines.append("That was the last step, so we are done.")
    lines.append(_final(family, s))
    return Trace("\n".join(lines), family.fmt_state(s))


def mixed(family: TaskFamily, problem: Problem, rng: random.Random) -> Trace:
    """A mixture of teachers: each trace written by stepwise, terse or verbose at random."""
    fn = rng.choice([stepwise, terse, verbose])
    return fn(family, problem, rng)


TEACHERS: dict[str, Teacher] = {
    t.name: t
    for t in [
        Teacher("stepwise", "explicit step-by-step: one line per operation with its result", stepwise),
        Teacher("quoting", "step by step, quoting the question's sentence before each operation", quoting),
        Teacher("terse", "skip-step: two operations per line, intermediate results in the head", terse),
        Teacher("answer-only", "the final answer alone", answer_only),
        Teacher("verbose", "explains each step in words, then re-checks the last step", verbose),
        Teacher("redundant", "long-winded: restates the value after each step, adds filler", redundant),
        Teacher("noisy", "step-by-step with a rate of wrong steps that propagate to the answer",
                stepwise, {"error_rate": 0.3}),
        Teacher("mixed", "a mixture of stepwise, terse and verbose traces", mixed),
    ]
}


def get_teacher(name: str) -> Teacher:
    try:
        return TEACHERS[name]
    except KeyError:
        raise KeyError(f"unknown lab teacher {name!r}; known: {sorted(TEACHERS)}") from None
