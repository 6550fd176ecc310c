"""Baseline metrics (DESIGN.md §4), computed from the same cached statistics as DMC."""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from dmc.metrics.base import Metric, MetricResult, register
from dmc.metrics.context import NO_TOKENS, ScoringContext

RSR_RANK_CAP = 100
RSR_NEEDS_ALL_TURNS = "rsr_turns=all needs token statistics with --score-turns all"


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
                   "per dataset mean avg-rank / mean avg-surprisal; lower = better. Tokens: the response's "
                   "(rsr_turns=last) or every assistant turn's (rsr_turns=all, as the reference).")
    needs = frozenset({"tokens"})

    def compute(self, ctx: ScoringContext) -> MetricResult:
        avg_rank = pd.Series(np.nan, index=ctx.index, dtype=float)
        avg_surp = pd.Series(np.nan, index=ctx.index, dtype=float)
        all_turns = ctx.settings.rsr_turns == "all"

        def one(i: Any) -> tuple[float, str | None]:
            rank = ctx.token_array(i, "rank")
            lp = ctx.token_array(i, "logprob")
            if rank is None or lp is None:
                return float("nan"), NO_TOKENS
            if all_turns:
                # prev_turns is null unless the table was computed with turns="all"; then the
                # prev_* lists are null only when there is no earlier assistant turn.
                rows = ctx.token_rows
                n_prev = rows.at[i, "prev_turns"] if "prev_turns" in rows.columns else None
                if n_prev is None or pd.isna(n_prev):
                    return float("nan"), RSR_NEEDS_ALL_TURNS
                prev_rank, prev_lp = ctx.token_array(i, "prev_rank"), ctx.token_array(i, "prev_logprob")
                if prev_rank is not None and prev_lp is not None:
                    rank, lp = np.concatenate([prev_rank, rank]), np.concatenate([prev_lp, lp])
            if len(rank) == 0:
                return float("nan"), "empty response" if not all_turns else "no assistant tokens"
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
                needs_all = (reasons[ctx.samples["dataset"] == d] == RSR_NEEDS_ALL_TURNS).any()
                why[d] = ("zero surprisal" if sel.any() else RSR_NEEDS_ALL_TURNS if needs_all
                          else "no sample with token statistics")
        return MetricResult(vals, reasons, pd.Series(out, dtype=float), pd.Series(why, index=list(out), dtype=object))


# -- IFD (Cherry LLM) and its perplexity-ratio variant (Superfiltering) ---------------------------------

IFD_FILTER_REASON = "IFD >= 1 (filtered, as in Cherry LLM / Superfiltering)"
IFD_ALL_FILTERED = "every scored sample has IFD >= 1 (filtered, as in Cherry LLM / Superfiltering)"
IFD_NO_NOQ = "no sample with a question-free pass"
IFD_NO_USABLE = "no sample with a usable question-free pass"
IFD_MISALIGNED = "question-free pass not aligned with the response tokens"


def ifd_nlls(ctx: ScoringContext, i: Any) -> tuple[float, float, str | None]:
    """(mean NLL of the response given the question, mean NLL of the SAME tokens without it, reason).

    Both means run over the response tokens after the first. Without the question the first
    response token has no context: a tokenizer without BOS leaves it unscored (NaN) and one with
    BOS scores it from BOS alone, a unigram guess whose large NLL says nothing about the question.
    Whether it counted would then depend on the student's tokenizer, and counting it in one mean
    only (as ifd-v1 did) biases the ratio; so it is dropped from both. (Cherry LLM keeps every
    response token because its question-free text still starts with "### Response:", so its first
    token has context; ours has none.) The two passes must cover the same tokens; when their
    lengths differ (the response tokenized differently, or the question-free pass not cut like a
    truncated main pass) the tokens cannot be paired and the sample is NaN with a reason.
    """
    nan = float("nan")
    lp = ctx.token_array(i, "logprob")
    if lp is None:
        return nan, nan, NO_TOKENS
    noq = ctx.token_array(i, "logprob_noq")
    if noq is None:
        return nan, nan, "no question-free pass"
    if len(lp) == 0:
        return nan, nan, "empty response"
    if len(noq) != len(lp):
        return nan, nan, IFD_MISALIGNED
    lp, noq = lp[1:], noq[1:]
    if len(lp) == 0:
        return nan, nan, "one-token response (its first token is not scored)"
    if not (np.isfinite(lp).all() and np.isfinite(noq).all()):
        return nan, nan, "non-finite log-probabilities"
    return float((-lp).mean()), float((-noq).mean()), None


class _IFDBase(Metric):
    """Per sample a ratio of the conditioned to the direct answer score (``_ratio``), NaN with
    IFD_FILTER_REASON when it is >= 1 and ``ifd_filter`` is on; per dataset the mean over the
    samples kept, and ``<name>_filtered``: the share of scored samples with a ratio >= 1."""

    direction = "higher"
    range = (0.0, float("inf"))
    needs = frozenset({"tokens", "tokens_noq"})

    @abstractmethod
    def _ratio(self, nll_q: float, nll_noq: float) -> tuple[float, str | None]:
        """The sample's value from its two mean NLLs, or NaN and a reason."""

    def compute(self, ctx: ScoringContext) -> MetricResult:
        filt = ctx.settings.ifd_filter
        scored = pd.Series(False, index=ctx.index, dtype=bool)
        over = pd.Series(False, index=ctx.index, dtype=bool)
        has_noq = pd.Series(False, index=ctx.index, dtype=bool)

        def one(i: Any) -> tuple[float, str | None]:
            has_noq[i] = ctx.token_array(i, "logprob_noq") is not None
            nll_q, nll_noq, why = ifd_nlls(ctx, i)
            if why is not None:
                return float("nan"), why
            v, why = self._ratio(nll_q, nll_noq)
            if why is not None:
                return float("nan"), why
            scored[i], over[i] = True, v >= 1.0
            if filt and v >= 1.0:
                return float("nan"), IFD_FILTER_REASON
            return v, None

        vals, reasons = _per_sample(ctx, one)
        dv, dr = _dataset_mean(ctx, vals, IFD_NO_NOQ)
        share = {}
        for d in ctx.datasets:
            sel = ctx.samples["dataset"] == d
            n = int(scored[sel].sum())
            share[d] = float(over[sel].sum()) / n if n else float("nan")
            if np.isnan(dv[d]) and n:
                dr[d] = IFD_ALL_FILTERED
            elif np.isnan(dv[d]) and has_noq[sel].any():
                dr[d] = IFD_NO_USABLE
        extra = pd.DataFrame({f"{self.name}_filtered": pd.Series(share, dtype=float)})
        return MetricResult(vals, reasons, dv, dr, dataset_extra=extra)


@register
class IFD(_IFDBase):
    name = "ifd"
    version = "ifd-v2"
    description = ("Instruction-Following Difficulty (Cherry LLM, Li et al. 2023): mean NLL(y|x) / mean NLL(y) "
                   "over the same response tokens, all but the first (it has no context without the question). "
                   "With ifd_filter (default) a sample with IFD >= 1 (the question does not help) is NaN, as both "
                   "references drop it; dataset = mean over the samples kept, ifd_filtered = share of scored "
                   "samples with IFD >= 1. Higher = better: the references select the highest IFD below 1.")

    def _ratio(self, nll_q: float, nll_noq: float) -> tuple[float, str | None]:
        if nll_noq <= 0.0:
            return float("nan"), "zero surprisal without the question"
        return nll_q / nll_noq, None


@register
class IFDPerplexity(_IFDBase):
    name = "ifd_ppl"
    version = "ifd-ppl-v1"
    description = ("IFD as Superfiltering (Li et al. 2024) computes it: PPL(y|x) / PPL(y) = exp(mean NLL(y|x)) / "
                   "exp(mean NLL(y)), over the same tokens as ifd. Same filter (>= 1 exactly when IFD >= 1), "
                   "ifd_ppl_filtered = share of scored samples with a ratio >= 1; dataset = mean over the samples "
                   "kept. Higher = better: Superfiltering selects the highest ratio below 1.")

    def _ratio(self, nll_q: float, nll_noq: float) -> tuple[float, str | None]:
        with np.errstate(over="ignore"):  # a huge gap is +inf: >= 1, filtered like any other
            return float(np.exp(nll_q - nll_noq)), None  # = exp(nll_q) / exp(nll_noq), without overflow


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
