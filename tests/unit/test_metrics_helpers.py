"""Hand-built inputs for the metric tests: samples, tokens rows and attempts rows, no model."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from dmc.data.schema import CandidateDataset, Sample

_TOK = re.compile(r"\d+|[A-Za-z]+|[^\sA-Za-z\d]")


def tokenize(text: str) -> list[tuple[int, int]]:
    """Char spans of a toy tokenization: digit runs, letter runs, single symbols."""
    return [(m.start(), m.end()) for m in _TOK.finditer(text)]


@dataclass
class Grade:
    status: str
    reason: str | None
    answer: str | None


class FakeGrader:
    """Grades by exact match of the text after 'The answer is' (a stand-in for dmc.grading).

    A gold of "??" makes every trace ungradable, to exercise that path.
    """

    calls = 0

    def extract(self, text: str) -> str | None:
        m = re.search(r"The answer is (-?[\d./]+)", text)
        return m.group(1).rstrip(".") if m else None

    def grade_many(self, texts: list[str], golds: list[str]) -> list[Grade]:
        return [self.grade(t, g) for t, g in zip(texts, golds)]

    def grade(self, text: str, gold: str) -> Grade:
        FakeGrader.calls += 1
        a = self.extract(text)
        if gold == "??":
            return Grade("ungradable", "gold not parseable", a)
        if a is None:
            return Grade("wrong", "no answer", None)
        return Grade("correct" if a == gold else "wrong", None, a)


def sample(ds: str, sid: str, question: str, response: str, gold: str | None) -> Sample:
    return Sample(id=sid, prompt=({"role": "user", "content": question},), response=response, gold=gold, dataset=ds)


def pool(*samples: Sample) -> list[CandidateDataset]:
    by: dict[str, list[Sample]] = {}
    for s in samples:
        by.setdefault(s.dataset, []).append(s)
    return [CandidateDataset(name=k, samples=v) for k, v in by.items()]


def token_row(s: Sample, rank=None, logprob=None, *, truncated: bool = False, logprob_noq=None,
              rank_of: dict[str, int] | None = None) -> dict:
    """A tokens-table row for ``s`` with the toy tokenization.

    rank / logprob: per-token lists (default rank 1, logprob -1). rank_of: rank by token string,
    applied to every token with that text (e.g. {"12": 5}).
    """
    spans = tokenize(s.response)
    n = len(spans)
    if rank is None:
        rank = [1] * n
        if rank_of:
            rank = [rank_of.get(s.response[a:b], 1) for a, b in spans]
    if logprob is None:
        logprob = [-1.0] * n
    assert len(rank) == n and len(logprob) == n, (n, len(rank), len(logprob))
    return {
        "sample_hash": s.hash, "question_hash": s.question_hash, "dataset": s.dataset, "sample_id": s.id,
        "n_tokens": n, "truncated": truncated, "token_ids": list(range(n)), "logprob": list(logprob),
        "rank": list(rank), "entropy": [0.0] * n,
        "char_start": [a for a, _ in spans], "char_end": [b for _, b in spans],
        "logprob_noq": None if logprob_noq is None else list(logprob_noq),
        "prev_turns": None, "prev_turn_tokens": None, "prev_token_ids": None, "prev_logprob": None, "prev_rank": None,
    }


def tokens_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def attempts_table(grades: dict[str, list[str]]) -> pd.DataFrame:
    """Attempts rows from {question_hash: [grade per attempt]}."""
    rows = []
    for qh, gs in grades.items():
        for k, g in enumerate(gs):
            rows.append({"question_hash": qh, "attempt": k, "text": "", "answer": None, "grade": g,
                         "reason": "x" if g == "ungradable" else None, "mean_surprisal": 1.0, "n_tokens": 1,
                         "truncated": False})
    return pd.DataFrame(rows, columns=["question_hash", "attempt", "text", "answer", "grade", "reason",
                                       "mean_surprisal", "n_tokens", "truncated"])
