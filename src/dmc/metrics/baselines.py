"""Baseline metrics (DESIGN.md §4), computed from the same cached statistics as DMC."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from dmc.metrics.base import Metric, MetricResult, register
from dmc.metrics.context import NO_TOKENS, ScoringContext

RSR_RANK_CAP = 100


def _per_sample(ctx: ScoringContext, fn: Callable[[Any], tuple[float, str | None]]) -> tuple[pd.Series, pd.Series]:
    vals = pd.Series(np.nan, index=ctx.index, dtype=float)
    reasons = pd.Series(None, index=ctx.index, dtype=object)
    for i in ctx.index:
        v, r = fn(i)
        vals[i] = v
        reasons[i] = (r or "non-finite value") if np.isnan(v) else None
    return vals, reasons


def _dataset_mean(ctx: ScoringContext, vals: pd.Series, empty_reason: str) -> tuple[pd.Series, pd.Series]:
    """Per dataset: mean of the known per-sample values; NaN with a reason when there are none."""
    out, why = {}, {}
    for d in ctx.datasets:
        v = vals[ctx.samples["dataset"] == d].dropna()
        out[d] = float(v.mean()) if len(v) else float("nan")
        if not len(v):
            why[d] = empty_reason
    return pd.Series(out, dtype=float), pd.Series(why, index=list(out), dtype=object)


@register
class RSR(Metric):
    name = "rsr"
    version = "rsr-v1"
    direction = "lower"
    range = (0.0, float("inf"))
    description = ("Rank-Surprisal Ratio (arXiv 2601.14249): per sample sum_t min(rank_t, 100) / sum_t(-logprob_t); "
                   "per dataset mean avg-rank / mean avg-surprisal; lower = better.")
    needs = frozenset({"tokens"})

    def compute(self, ctx: ScoringContext) -> MetricResult:
        avg_rank = pd.Series(np.nan, index=ctx.index, dtype=float)
        avg_surp = pd.Series(np.nan, index=ctx.index, dtype=float)

        def one(i: Any) -> tuple[float, str | None]:
            rank = ctx.token_array(i, "rank")
            lp = ctx.token_array(i, "logprob")
            if rank is None or lp is None:
                return float("nan"), NO_TOKENS
            if len(rank) == 0:
                return float("nan"), "empty response"
            if not np.isfinite(lp).all():
                return float("nan"), "non-finite log-probabilities"
            r = np.minimum(rank, RSR_RANK_CAP)
            avg_rank[i], avg_surp[i] = float(r.mean()), float((-lp).mean())
            denom = float((-lp).sum())
            if denom <= 0.0:
                return float("nan"), "zero surprisal"
            return float(r.sum()) / denom, None

        vals, reasons = _per_sample(ctx, one)
        out, why = {}, {}
        for d in ctx.datasets:
            sel = (ctx.samples["dataset"] == d) & avg_rank.notna()
            mr, ms = avg_rank[sel].mean(), avg_surp[sel].mean()
            out[d] = float(mr / ms) if sel.any() and ms > 0 else float("nan")
            if np.isnan(out[d]):
                why[d] = "no sample with token statistics" if not sel.any() else "zero surprisal"
        return MetricResult(vals, reasons, pd.Series(out, dtype=float), pd.Series(why, index=list(out), dtype=object))


@register
class IFD(Metric):
    name = "ifd"
    version = "ifd-v1"
    direction = "higher"
    range = (0.0, float("inf"))
    description = ("Instruction-Following Difficulty (Cherry LLM): mean NLL(y|x) / mean NLL(y), skipping the "
                   "question-free pass's first token (it has no context); dataset = mean over samples. Cherry LLM "
                   "selects high-IFD samples (higher = harder to follow, more to learn); IFD >= 1 means the "
                   "question does not help predict the answer.")
    needs = frozenset({"tokens", "tokens_noq"})

    def compute(self, ctx: ScoringContext) -> MetricResult:
        def one(i: Any) -> tuple[float, str | None]:
            lp = ctx.token_array(i, "logprob")
            if lp is None:
                return float("nan"), NO_TOKENS
            noq = ctx.token_array(i, "logprob_noq")
            if noq is None:
                return float("nan"), "no question-free pass"
            # the question-free pass has no prediction for its first token (NaN there): skip it
            noq = noq[np.isfinite(noq)]
            if len(lp) == 0 or len(noq) == 0:
                return float("nan"), "empty response"
            if not np.isfinite(lp).all():
                return float("nan"), "non-finite log-probabilities"
            den = float((-noq).mean())
            if den <= 0.0:
                return float("nan"), "zero surprisal without the question"
            return float((-lp).mean()) / den, None

        vals, reasons = _per_sample(ctx, one)
        dv, dr = _dataset_mean(ctx, vals, "no sample with a question-free pass")
        return MetricResult(vals, reasons, dv, dr)


@register
class MeanLogprob(Metric):
    name = "mean_logprob"
    version = "mean-logprob-v1"
    direction = "higher"
    range = (float("-inf"), 0.0)
    description = "Mean log-probability of the trace tokens under the student (GRAPE-style); higher = more familiar."
    needs = frozenset({"tokens"})

    def compute(self, ctx: ScoringContext) -> MetricResult:
        def one(i: Any) -> tuple[float, str | None]:
            lp = ctx.token_array(i, "logprob")
            if lp is None:
                return float("nan"), NO_TOKENS
            if len(lp) == 0:
                return float("nan"), "empty response"
            if not np.isfinite(lp).all():
                return float("nan"), "non-finite log-probabilities"
            return float(lp.mean()), None

        vals, reasons = _per_sample(ctx, one)
        dv, dr = _dataset_mean(ctx, vals, "no sample with token statistics")
        return MetricResult(vals, reasons, dv, dr)


@register
class Length(Metric):
    name = "length"
    version = "length-v1"
    direction = "none"
    range = (0.0, float("inf"))
    description = "Response tokens under the student's tokenizer; dataset = mean. No preferred direction."
    needs = frozenset({"tokens"})

    def compute(self, ctx: ScoringContext) -> MetricResult:
        rows = ctx.token_rows
        if "n_tokens" in rows:
            vals = rows["n_tokens"].where(rows["has_tokens"]).astype(float)
        else:
            vals = pd.Series(np.nan, index=ctx.index, dtype=float)
        reasons = pd.Series(np.where(vals.isna(), NO_TOKENS, None), index=ctx.index, dtype=object)
        dv, dr = _dataset_mean(ctx, vals, "no sample with token statistics")
        return MetricResult(vals, reasons, dv, dr)


@register
class TeacherAccuracy(Metric):
    name = "teacher_accuracy"
    version = "teacher-accuracy-v1"
    direction = "higher"
    range = (0.0, 1.0)
    description = "Mean quality q (verified-correct, complete traces) over samples with known quality; higher = better."
    needs = frozenset({"tokens", "grades"})

    def compute(self, ctx: ScoringContext) -> MetricResult:
        qual = ctx.quality
        dv, dr = _dataset_mean(ctx, qual["q"], "no sample with known quality")
        return MetricResult(qual["q"].astype(float), qual["q_reason"].astype(object), dv, dr)


@register
class StudentFailRate(Metric):
    name = "student_fail_rate"
    version = "student-fail-rate-v1"
    direction = "none"
    range = (0.0, 1.0)
    description = "1 - c: the student's failure rate on the question; dataset = mean over its distinct questions."
    needs = frozenset({"attempts"})

    def compute(self, ctx: ScoringContext) -> MetricResult:
        cap = ctx.capability
        vals = (1.0 - cap["c"]).astype(float)
        out, why = {}, {}
        for d in ctx.datasets:
            c_d, r = ctx.mean_capability(ctx.samples.loc[ctx.samples["dataset"] == d, "question_hash"])
            out[d] = 1.0 - c_d
            if r:
                why[d] = r
        return MetricResult(vals, cap["c_reason"].astype(object), pd.Series(out, dtype=float),
                            pd.Series(why, index=list(out), dtype=object))


def seeded_uniform(seed: int, key: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, key): the same sample gets the same draw in any order."""
    h = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:7], "big") / float(1 << 56)


@register
class Random(Metric):
    name = "random"
    version = "random-v1"
    direction = "none"
    range = (0.0, 1.0)
    description = "A seeded uniform score per sample (keyed by content hash); dataset = mean. The chance baseline."
    needs = frozenset()

    def compute(self, ctx: ScoringContext) -> MetricResult:
        seed = ctx.settings.seed
        vals = ctx.samples["sample_hash"].map(lambda h: seeded_uniform(seed, h)).astype(float)
        reasons = pd.Series(None, index=ctx.index, dtype=object)
        dv, dr = _dataset_mean(ctx, vals, "empty dataset")
        return MetricResult(vals, reasons, dv, dr)
