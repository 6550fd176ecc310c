"""One summary line per dataset from the two tables (for `dmc stats` and logs)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DatasetSummary:
    """n samples, response tokens scored, truncated samples, token-weighted mean log-prob
    (natural log, <= 0, higher = the student finds the traces more expected), and the student's
    pass rate on the dataset's questions (correct / gradable attempts, in [0, 1]; NaN when no
    attempt is gradable or attempts were not run)."""

    dataset: str
    n_samples: int
    n_tokens: int
    n_truncated: int
    mean_logprob: float
    n_questions: int
    pass_rate: float
    n_gradable: int

    def line(self) -> str:
        lp = f"{self.mean_logprob:.3f}" if math.isfinite(self.mean_logprob) else "n/a"
        pr = (f"{self.pass_rate:.1%} ({self.n_gradable} gradable attempts)" if math.isfinite(self.pass_rate)
              else "n/a")
        return (f"{self.dataset}: {self.n_samples} samples, {self.n_tokens:,} tokens "
                f"({self.n_truncated} truncated), mean logprob {lp}, "
                f"{self.n_questions} questions, student pass rate {pr}")


def pass_rate(attempts: pd.DataFrame | None, question_hashes) -> tuple[float, int]:
    """(correct / gradable attempts, gradable attempts) over the given questions."""
    if attempts is None or attempts.empty:
        return math.nan, 0
    sel = attempts[attempts["question_hash"].isin(set(question_hashes))]
    gradable = sel[sel["grade"] != "ungradable"]
    if gradable.empty:
        return math.nan, 0
    return float((gradable["grade"] == "correct").mean()), len(gradable)


def summarize(tokens: pd.DataFrame, attempts: pd.DataFrame | None) -> list[DatasetSummary]:
    out = []
    for name, g in tokens.groupby("dataset", sort=False):
        n_tok = int(g["n_tokens"].sum())
        total = float(sum(np.sum(x, dtype=np.float64) for x in g["logprob"])) if n_tok else math.nan
        qs = g["question_hash"].unique()
        pr, ng = pass_rate(attempts, qs)
        out.append(DatasetSummary(str(name), len(g), n_tok, int(g["truncated"].sum()),
                                  total / n_tok if n_tok else math.nan, len(qs), pr, ng))
    return out
