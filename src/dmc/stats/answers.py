"""The student's likelihood of each question's gold answer (the **answers** table).

A continuous measure of capability that needs no generation: for each distinct question with a
gold answer, one teacher-forced pass of the student over the question followed by the response
``"The answer is <gold>."`` (an *answer probe*, scored by the same engine and cache as the
tokens table), and the sum of the log-probabilities of the tokens that spell the gold.
``gold_logprob`` = log P_θ(gold | question, "The answer is"), in (-inf, 0], higher = the student
is closer to answering; it does not floor at 0 as a pass rate does for a weak student, and it costs
one short forward pass per question instead of a generated attempt. The cue is the same for every
question, so differences between questions are differences of difficulty for the student.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from dmc.data.schema import EvalItem, Sample

ANSWER_CUE = "The answer is "
ANSWERS_COLUMNS = ("question_hash", "gold_logprob", "n_gold_tokens", "reason")
PROBE_DATASET = "answer-probe"

NO_GOLD = "no gold"
CUT = "the answer probe is longer than the scoring max_length"


def probe_response(gold: str) -> str:
    return f"{ANSWER_CUE}{gold}."


def answer_probe(q: Sample | EvalItem) -> Sample | None:
    """The answer probe of a question (its prompt, then ``The answer is <gold>.``), None without gold.
    It has the question's prompt and gold, so its ``question_hash`` is the question's."""
    gold = None if q.gold is None else str(q.gold).strip()
    if not gold:
        return None
    return Sample(id=f"probe-{q.question_hash}", prompt=tuple(q.prompt), response=probe_response(gold), gold=q.gold,
                  dataset=PROBE_DATASET)


def answer_probes(questions: Sequence[Sample | EvalItem]) -> list[Sample]:
    """One probe per distinct question with a gold answer, in first-seen order."""
    out: dict[str, Sample] = {}
    for q in questions:
        if q.question_hash not in out and (probe := answer_probe(q)) is not None:
            out[q.question_hash] = probe
    return list(out.values())


def gold_logprob(logprob: np.ndarray, char_start: np.ndarray, char_end: np.ndarray,
                 gold: str) -> tuple[float, int]:
    """(sum of the log-probabilities, count) of the probe tokens that overlap the gold's characters."""
    lo, hi = len(ANSWER_CUE), len(ANSWER_CUE) + len(gold)
    mask = (char_end > lo) & (char_start < hi)
    return float(np.sum(logprob[mask], dtype=np.float64)), int(mask.sum())


def answers_table(questions: Sequence[Sample | EvalItem], probe_tokens: pd.DataFrame | None) -> pd.DataFrame:
    """The answers table: one row per distinct question, from the tokens rows of its answer probe.

    A question without gold, or whose probe has no tokens row (not computed, or cut at the scoring
    max_length), has NaN with the reason.
    """
    rows: dict[str, Any] = {}
    if probe_tokens is not None and len(probe_tokens):
        rows = dict(zip(probe_tokens["sample_hash"], probe_tokens.itertuples(index=False)))
    out: dict[str, dict] = {}
    for q in questions:
        h = q.question_hash
        if h in out:
            continue
        probe = answer_probe(q)
        if probe is None:
            out[h] = {"gold_logprob": np.nan, "n_gold_tokens": 0, "reason": NO_GOLD}
            continue
        r = rows.get(probe.hash)
        if r is None:
            out[h] = {"gold_logprob": np.nan, "n_gold_tokens": 0, "reason": "no answer-probe statistics"}
        elif bool(r.truncated):
            out[h] = {"gold_logprob": np.nan, "n_gold_tokens": 0, "reason": CUT}
        else:
            lp, n = gold_logprob(np.asarray(r.logprob, dtype=np.float64), np.asarray(r.char_start),
                                 np.asarray(r.char_end), str(q.gold).strip())
            out[h] = {"gold_logprob": lp if n else np.nan, "n_gold_tokens": n,
                      "reason": None if n else "the gold has no token in the probe"}
    df = pd.DataFrame.from_dict(out, orient="index")
    df.index.name = "question_hash"
    return df.reset_index()[list(ANSWERS_COLUMNS)] if len(df) else pd.DataFrame(columns=list(ANSWERS_COLUMNS))
