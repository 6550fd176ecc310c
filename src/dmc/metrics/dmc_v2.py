"""DMC v2: DMC v1 with the difficulty match measured on the log-odds (item-response) scale.

DMC_v2(D) = R2(D) * mean_i(w_i * A_i), with w_i as in v1 (soft quality), A_i the alignment on the
novel content tokens — by default (alignment="prob", dmc-v2.3) their mean probability under the
student; alignment="geo" their geometric mean; alignment="rank" v1's top-k fraction — and

    R2(D) = exp(-(logit C~_D - logit C~_T)^2 / (2 sigma_logit^2)),
    C~ = (n * C + a) / (n + 2 a)     (pass rate shrunk by a pseudo-count a per outcome),

where, with capability="attempts", n is the number of graded attempts behind C. Why (docs/DMC.md):
under a one-parameter item-response (Rasch) model, logit P(correct) = ability - difficulty, so the log-odds gap is the
difficulty gap between D's questions and the target questions in the student's own units. A
pass-rate gap is not: for a weak student (C_T near 0) a set of questions far harder than the
target moves C only from 0.1 to 0.0, which v1's R barely penalizes, while for a strong student
(C_T near 0.5) the same difficulty gap moves C a lot. The pseudo-count keeps the logit finite
when a set is all-fail or all-pass (a = 0.5 is the Jeffreys prior). Range [0, 1]; higher = more
compatible. Per sample, m_i = w_i * A_i * R2(c~_i) with c~_i shrunk over its question's attempts.

By default (capability="likelihood", dmc-v2.3) the log-odds come from the student's probability of
each gold answer right after its question (dmc.stats.answers) instead of pass rates: per question z = logit
P(gold | question), and the gap is mean z over D's distinct questions minus mean z over the target
questions. No attempt is generated, and z does not floor where a weak student's pass rates are 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dmc.metrics.base import Metric, MetricResult, register
from dmc.metrics.context import ScoringContext
from dmc.metrics.dmc_v1 import _rng, bootstrap_replicates, sample_reasons


def shrunk_rate(c: np.ndarray | float, n: np.ndarray | float, prior: float) -> np.ndarray:
    """(n c + a) / (n + 2a): the pass rate with a pseudo-count ``a`` of passes and of fails; NaN in, NaN out."""
    c, n = np.asarray(c, dtype=float), np.asarray(n, dtype=float)
    return (n * c + prior) / (n + 2.0 * prior)


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


def match_from_gap(gap: np.ndarray | float, sigma_logit: float, side: str = "both") -> np.ndarray:
    """R2 = exp(-g^2 / (2 sigma_logit^2)) of a log-odds gap g, in (0, 1]; NaN in, NaN out.

    side="easier" counts only g > 0 (questions easier for the student than the target's); a harder
    set is left to the alignment term, which already prices steps the student cannot take.
    """
    gap = np.asarray(gap, dtype=float)
    if side == "easier":
        gap = np.where(np.isnan(gap), np.nan, np.maximum(gap, 0.0))
    elif side != "both":
        raise ValueError(f"difficulty-match side must be 'both' or 'easier', got {side!r}")
    return np.exp(-(gap**2) / (2.0 * sigma_logit**2))


def difficulty_match_logit(c: np.ndarray | float, n: np.ndarray | float, c_target: float, n_target: float,
                           sigma_logit: float, prior: float, side: str = "both") -> np.ndarray:
    """R2 of pass rates: g = logit c~ - logit c~_T (shrunk rates), in (0, 1]; 1 when they agree."""
    gap = logit(shrunk_rate(c, n, prior)) - logit(shrunk_rate(c_target, n_target, prior))
    return match_from_gap(gap, sigma_logit, side)


def _attempt_count(ctx: ScoringContext, question_hashes) -> float:
    """Graded attempts behind the mean capability of these distinct questions."""
    cq = ctx.capability_by_question
    qs = list(dict.fromkeys(question_hashes))
    sub = cq.reindex(qs)
    return float(sub.loc[sub["c"].notna(), "n_gradable"].sum())


class _PassRates:
    """The log-odds scale from pass rates over generated attempts (capability="attempts")."""

    def __init__(self, ctx: ScoringContext):
        self.ctx, st = ctx, ctx.settings
        self.prior = st.prior
        c_t, self.target_reason = ctx.target_capability
        self.target = float(logit(shrunk_rate(c_t, _attempt_count(ctx, ctx.target_hashes), self.prior)))
        self.values = ctx.capability["c"]  # what the bootstrap resamples per sample
        self.reasons = ctx.capability["c_reason"]

    def per_sample(self) -> np.ndarray:
        n_i = self.ctx.samples["question_hash"].map(self.ctx.capability_by_question["n_gradable"]).astype(float)
        return logit(shrunk_rate(self.values.to_numpy(), n_i.to_numpy(), self.prior))

    def dataset(self, qh: pd.Series) -> tuple[float, str | None, float]:
        """(logit of D's shrunk mean pass rate, reason when NaN, attempts behind it)."""
        c_d, why = self.ctx.mean_capability(qh)
        n_d = _attempt_count(self.ctx, qh)
        return float(logit(shrunk_rate(c_d, n_d, self.prior))), why, n_d

    def replicate(self, means: np.ndarray, n_d: float) -> np.ndarray:
        return logit(shrunk_rate(means, n_d, self.prior))


class _AnswerLikelihood:
    """The log-odds scale from the student's probability of each gold answer (capability="likelihood")."""

    def __init__(self, ctx: ScoringContext):
        self.ctx = ctx
        z_t, self.target_reason = ctx.answer_logits(ctx.target_hashes)
        self.target = float(z_t.mean()) if z_t.size else float("nan")
        self.values = ctx.answer_capability["z"]  # what the bootstrap resamples per sample
        self.reasons = ctx.answer_capability["z_reason"]

    def per_sample(self) -> np.ndarray:
        return self.values.to_numpy(dtype=float)

    def dataset(self, qh: pd.Series) -> tuple[float, str | None, float]:
        z, why = self.ctx.answer_logits(qh)
        return (float(z.mean()) if z.size else float("nan")), why, float(z.size)

    def replicate(self, means: np.ndarray, n_d: float) -> np.ndarray:
        return means


@register
class DMCv2(Metric):
    name = "dmc_v2"
    version = "dmc-v2.4"
    direction = "higher"
    range = (0.0, 1.0)
    description = ("DMC on continuous scales: R2 = exp(-gap^2 / 2 sigma_logit^2), gap = the log-odds difference "
                   "between D's questions and the target's (the gold answers' likelihood, or shrunk pass rates); "
                   "times mean(w*A), A = the content tokens' mean probability (or top-k fraction); "
                   "higher = more compatible. Per sample m_v2 = w*A*R2.")
    needs = frozenset({"tokens", "attempts", "grades"})
    sample_column = "m_v2"

    def needs_for(self, settings) -> frozenset[str]:
        if settings.capability == "likelihood":
            return (self.needs - {"attempts"}) | {"answers"}
        return self.needs

    def compute(self, ctx: ScoringContext) -> MetricResult:
        st = ctx.settings
        s = ctx.samples
        qual, al = ctx.quality, ctx.alignment
        scale = _AnswerLikelihood(ctx) if st.capability == "likelihood" else _PassRates(ctx)
        w = ctx.weight()
        A = al[{"prob": "A_prob", "geo": "A_geo", "rank": "A"}[st.alignment]]
        wA = w * A
        R_i = pd.Series(match_from_gap(scale.per_sample() - scale.target, st.sigma_logit, st.match_side),
                        index=ctx.index)
        m = wA * R_i
        m_reason = sample_reasons(qual, al, pd.DataFrame({"c_reason": scale.reasons}), scale.target_reason, m)

        alpha = (1.0 - st.ci) / 2.0
        rows, reasons = {}, {}
        for d in ctx.datasets:
            sel = (s["dataset"] == d).to_numpy()
            wa_d = wA[sel].to_numpy(dtype=float)
            known = ~np.isnan(wa_d)
            qh = s.loc[sel, "question_hash"]
            x_d, x_d_reason, n_d = scale.dataset(qh)
            gap = x_d - scale.target
            R_d = float(match_from_gap(gap, st.sigma_logit, st.match_side))
            mean_wa = float(np.mean(wa_d[known])) if known.any() else float("nan")
            lo = hi = se = float("nan")
            if known.any() and not np.isnan(R_d) and st.n_boot > 0:
                reps_wa, reps_x = bootstrap_replicates(wa_d, scale.values[sel].to_numpy(dtype=float), qh.to_numpy(),
                                                       st.n_boot, _rng(st.seed, d))
                reps = reps_wa * match_from_gap(scale.replicate(reps_x, n_d) - scale.target, st.sigma_logit,
                                                st.match_side)
                if np.isfinite(reps).any():
                    lo, hi = (float(x) for x in np.nanquantile(reps, [alpha, 1.0 - alpha]))
                    se = float(np.nanstd(reps, ddof=1)) if np.isfinite(reps).sum() > 1 else float("nan")
            A_d = A[sel]
            rows[d] = {"dmc_v2": R_d * mean_wa, "dmc_v2_lo": lo, "dmc_v2_hi": hi, "dmc_v2_se": se,
                       "R2": R_d, "logit_gap": float(gap),
                       "A_v2": float(A_d.mean()) if A_d.notna().any() else float("nan")}
            if not known.any():
                reasons[d] = "no sample with known quality and alignment"
            elif np.isnan(R_d):
                reasons[d] = f"C_T: {scale.target_reason}" if scale.target_reason else f"C_D: {x_d_reason}"
        ds = pd.DataFrame.from_dict(rows, orient="index")
        return MetricResult(
            sample_values=m.astype(float),
            sample_reasons=m_reason.astype(object),
            dataset_values=ds["dmc_v2"].astype(float),
            dataset_reasons=pd.Series(reasons, index=ds.index, dtype=object),
            sample_extra=pd.DataFrame({"R2": R_i, "A_v2": A}),
            dataset_extra=ds.drop(columns=["dmc_v2"]),
        )
