"""DMC v2: DMC v1 with the difficulty match measured on the log-odds (item-response) scale.

DMC_v2(D) = R2(D) * mean_i(w_i * A_i), with w_i and A_i exactly as in v1 (soft quality, top-k
alignment on novel content tokens) and

    R2(D) = exp(-(logit C~_D - logit C~_T)^2 / (2 sigma_logit^2)),
    C~ = (n * C + a) / (n + 2 a)     (pass rate shrunk by a pseudo-count a per outcome),

where n is the number of graded attempts behind C. Why (docs/DMC.md): under a one-parameter
item-response (Rasch) model, logit P(correct) = ability - difficulty, so the log-odds gap is the
difficulty gap between D's questions and the target questions in the student's own units. A
pass-rate gap is not: for a weak student (C_T near 0) a set of questions far harder than the
target moves C only from 0.1 to 0.0, which v1's R barely penalizes, while for a strong student
(C_T near 0.5) the same difficulty gap moves C a lot. The pseudo-count keeps the logit finite
when a set is all-fail or all-pass (a = 0.5 is the Jeffreys prior). Range [0, 1]; higher = more
compatible. Per sample, m_i = w_i * A_i * R2(c~_i) with c~_i shrunk over its question's attempts.
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


def difficulty_match_logit(c: np.ndarray | float, n: np.ndarray | float, c_target: float, n_target: float,
                           sigma_logit: float, prior: float, side: str = "both") -> np.ndarray:
    """R2 = exp(-g^2 / (2 sigma_logit^2)) with g = logit c~ - logit c~_T, in (0, 1]; 1 when the shrunk rates agree.

    side="easier" counts only g > 0 (questions easier for the student than the target's); a harder
    set is left to the alignment term, which already prices steps the student cannot take.
    """
    gap = logit(shrunk_rate(c, n, prior)) - logit(shrunk_rate(c_target, n_target, prior))
    if side == "easier":
        gap = np.where(np.isnan(gap), np.nan, np.maximum(gap, 0.0))
    elif side != "both":
        raise ValueError(f"difficulty-match side must be 'both' or 'easier', got {side!r}")
    return np.exp(-(gap**2) / (2.0 * sigma_logit**2))


def _attempt_count(ctx: ScoringContext, question_hashes) -> float:
    """Graded attempts behind the mean capability of these distinct questions."""
    cq = ctx.capability_by_question
    qs = list(dict.fromkeys(question_hashes))
    sub = cq.reindex(qs)
    return float(sub.loc[sub["c"].notna(), "n_gradable"].sum())


@register
class DMCv2(Metric):
    name = "dmc_v2"
    version = "dmc-v2.2"
    direction = "higher"
    range = (0.0, 1.0)
    description = ("DMC with the difficulty match on the log-odds scale: R2 = exp(-(logit C~_D - logit C~_T)^2 / "
                   "2 sigma_logit^2) with pass rates shrunk by a pseudo-count; times mean(w*A) as in v1; "
                   "higher = more compatible. Per sample m_v2 = w*A*R2(c~_i).")
    needs = frozenset({"tokens", "attempts", "grades"})
    sample_column = "m_v2"

    def compute(self, ctx: ScoringContext) -> MetricResult:
        st = ctx.settings
        s = ctx.samples
        qual, cap, al = ctx.quality, ctx.capability, ctx.alignment
        w = ctx.weight()
        wA = w * al["A"]
        c_t, c_t_reason = ctx.target_capability
        tq = ctx.target_questions if ctx.target_questions is not None else s["question_hash"]
        n_t = _attempt_count(ctx, tq)
        n_i = s["question_hash"].map(ctx.capability_by_question["n_gradable"]).astype(float)
        R_i = pd.Series(difficulty_match_logit(cap["c"].to_numpy(), n_i.to_numpy(), c_t, n_t, st.sigma_logit,
                                               st.prior, st.match_side), index=ctx.index)
        m = wA * R_i
        m_reason = sample_reasons(qual, al, cap, c_t_reason, m)

        alpha = (1.0 - st.ci) / 2.0
        rows, reasons = {}, {}
        for d in ctx.datasets:
            sel = (s["dataset"] == d).to_numpy()
            wa_d = wA[sel].to_numpy(dtype=float)
            known = ~np.isnan(wa_d)
            qh = s.loc[sel, "question_hash"]
            c_d, c_d_reason = ctx.mean_capability(qh)
            n_d = _attempt_count(ctx, qh)
            R_d = float(difficulty_match_logit(c_d, n_d, c_t, n_t, st.sigma_logit, st.prior, st.match_side))
            mean_wa = float(np.mean(wa_d[known])) if known.any() else float("nan")
            lo = hi = float("nan")
            if known.any() and not np.isnan(R_d) and st.n_boot > 0:
                reps_wa, reps_c = bootstrap_replicates(wa_d, cap["c"][sel].to_numpy(dtype=float), qh.to_numpy(),
                                                       st.n_boot, _rng(st.seed, d))
                reps = reps_wa * difficulty_match_logit(reps_c, n_d, c_t, n_t, st.sigma_logit, st.prior,
                                                        st.match_side)
                if np.isfinite(reps).any():
                    lo, hi = (float(x) for x in np.nanquantile(reps, [alpha, 1.0 - alpha]))
            rows[d] = {
                "dmc_v2": R_d * mean_wa, "dmc_v2_lo": lo, "dmc_v2_hi": hi,
                "R2": R_d,
                "logit_gap": float(logit(shrunk_rate(c_d, n_d, st.prior)) - logit(shrunk_rate(c_t, n_t, st.prior))),
            }
            if not known.any():
                reasons[d] = "no sample with known quality and alignment"
            elif np.isnan(R_d):
                reasons[d] = f"C_T: {c_t_reason}" if c_t_reason else f"C_D: {c_d_reason}"
        ds = pd.DataFrame.from_dict(rows, orient="index")
        return MetricResult(
            sample_values=m.astype(float),
            sample_reasons=m_reason.astype(object),
            dataset_values=ds["dmc_v2"].astype(float),
            dataset_reasons=pd.Series(reasons, index=ds.index, dtype=object),
            sample_extra=pd.DataFrame({"R2": R_i}),
            dataset_extra=ds.drop(columns=["dmc_v2"]),
        )
