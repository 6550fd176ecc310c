"""Grading a whole trace: extract its final answer, then verify it against the gold."""

from __future__ import annotations

from collections.abc import Sequence

from dmc.data.reasoning import final_answer_text
from dmc.grading.base import Verifier
from dmc.grading.extract import extract_answer
from dmc.grading.gold import refine_for_gold
from dmc.grading.result import Grade
from dmc.grading.verifiers import get_verifier


def grade(text: str, gold: str | None, verifier: str | Verifier = "auto") -> Grade:
    """Grade one trace (see `grade_many`)."""
    return grade_many([text], [gold], verifier)[0]


def grade_many(
    texts: Sequence[str], golds: Sequence[str | None], verifier: str | Verifier = "auto"
) -> list[Grade]:
    """Grade traces against golds, in order; math-verify work goes to the worker as one batch.

    The answer is read from the text after the last `</think>` (dmc.data.final_answer_text; an
    unclosed think block has none). No gold -> `ungradable` "no gold"; no extractable answer ->
    `wrong` "no answer extracted".
    For a choice-letter or yes/no gold the answer is read as a choice / a yes-or-no
    (`dmc.grading.gold.refine_for_gold`).
    """
    if len(texts) != len(golds):
        raise ValueError(f"grade_many: {len(texts)} texts but {len(golds)} golds")
    v = get_verifier(verifier)
    grades: list[Grade | None] = [None] * len(texts)
    todo: list[int] = []
    pairs: list[tuple[str, str]] = []
    for k, (text, gold) in enumerate(zip(texts, golds)):
        if gold is not None and not isinstance(gold, str):
            raise TypeError(f"grade_many: golds[{k}] must be a str or None, got {type(gold).__name__}")
        final = final_answer_text(text)  # a <think> block's reasoning never supplies the answer
        answer = refine_for_gold(final, extract_answer(final).answer, gold)
        if gold is None:
            grades[k] = Grade.ungradable("no gold", answer)
        elif answer is None:
            grades[k] = Grade.wrong(None, "no answer extracted")
        else:
            todo.append(k)
            pairs.append((answer, gold))
    for k, gr in zip(todo, v.verify_many(pairs)):
        grades[k] = gr
    return [g for g in grades if g is not None]
