"""DMC v1: Data-Model Compatibility of a dataset with a student (DESIGN.md §3).

DMC(D) = R(D) * mean_i(w_i * A_i) over D's samples with known q_i and A_i, where
w_i = epsilon + (1 - epsilon) * q_i (times F_i = 1[the trace reaches its final answer within the
student's generation budget] when a budget is set), A_i is the top-k alignment over novel content
tokens and R(D) = exp(-(C_D - C_T)^2 / (2 sigma^2)) matches D's difficulty for the student (C_D, mean pass
rate over D's questions) to that of its target tasks (C_T). Range [0, 1]; higher = more
compatible. Per sample, m_i = w_i * A_i * R(c_i). A bootstrap over samples gives the CI
(`dmc_lo`, `dmc_hi`) and the standard error (`dmc_se`, the replicates' standard deviation).
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from dmc.metrics.base import Metric, MetricResult, register
from dmc.metrics.context import ScoringContext


def difficulty_match(c: np.ndarray | float, c_target: float, sigma: float) -> np.ndarray | float:
    """R = exp(-(c - C_T)^2 / (2 sigma^2)), in (0, 1]; 1 when c == C_T. NaN in, NaN out."""
    return np.exp(-((np.asarray(c, dtype=float) - c_target) ** 2) / (2.0 * sigma**2))


def _rng(seed: int, dataset: str) -> np.random.Generator:
    # Seeded per dataset name, so a dataset's interval does not depend on the other datasets.
    return np.random.default_rng([seed, zlib.crc32(dataset.encode("utf-8"))])


def bootstrap_replicates(
    wA: np.ndarray,
    c: np.ndarray,
    question: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    chunk: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates of (mean w*A, C_D) for one dataset; NaN where a replicate has none.

    Resamples the dataset's samples with replacement. Each replicate recomputes mean(w*A) over its
    samples with known w*A, and C_D from its questions: question j gets weight (its samples drawn) /
    (its samples in D with known c), so with one trace per question this is the plain resampled
    mean, and in expectation it equals the point C_D (the mean over distinct questions).
    """
    n = len(wA)
    if n == 0 or n_boot == 0:
        return np.full(n_boot, np.nan), np.full(n_boot, np.nan)
    known = ~np.isnan(wA)
    wA0 = np.where(known, wA, 0.0)
    c_known = ~np.isnan(c)
    _, inv = np.unique(question, return_inverse=True)
    q_sizes = np.bincount(inv, weights=c_known.astype(float))[inv]
    cw = np.where(c_known, 1.0 / np.maximum(q_sizes, 1.0), 0.0)
    cwc = np.where(c_known, cw * np.nan_to_num(c), 0.0)
    mean_wa, c_d = np.empty(n_boot), np.empty(n_boot)
    p = np.full(n, 1.0 / n)
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        draws = rng.multinomial(n, p, size=m).astype(float)  # (m, n) multiplicities
        den = draws @ known.astype(float)
        mean_wa[start:start + m] = np.divide(draws @ wA0, den, out=np.full(m, np.nan), where=den > 0)
        cden = draws @ cw
        c_d[start:start + m] = np.divide(draws @ cwc, cden, out=np.full(m, np.nan), where=cden > 0)
    return mean_wa, c_d


def bootstrap_dmc(wA: np.ndarray, c: np.ndarray, question: np.ndarray, c_target: float, sigma: float,
                  n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of DMC = R(C_D*) * mean(w*A)* (see :func:`bootstrap_replicates`)."""
    mean_wa, c_d = bootstrap_replicates(wA, c, question, n_boot, rng)
    return difficulty_match(c_d, c_target, sigma) * mean_wa


def sample_reasons(qual: pd.DataFrame, al: pd.DataFrame, cap: pd.DataFrame, c_t_reason: str | None,
                   m: pd.Series) -> pd.Series:
    """Why each sample's DMC is NaN: its first missing ingredient (quality, alignment, capability,
    then the target's capability); None where the score is known."""
    r = qual["q_reason"].where(qual["q_reason"].notna(), al["A_reason"])
    r = r.where(r.notna(), cap["c_reason"])
    if c_t_reason:
        r = r.where(r.notna(), f"C_T: {c_t_reason}")
    return r.where(m.isna(), None)


@register
class DMCv1(Metric):
    name = "dmc"
    version = "dmc-v1.3"
    direction = "higher"
    range = (0.0, 1.0)
    description = ("Data-Model Compatibility: R(C_D, C_T) * mean(w*A) over samples with known quality and "
                   "alignment; w = eps + (1-eps) q, A = top-k alignment on novel content tokens; "
                   "higher = more compatible. Per sample m = w*A*R(c_i).")
    needs = frozenset({"tokens", "attempts", "grades"})
    sample_column = "m"

    def compute(self, ctx: ScoringContext) -> MetricResult:
        st = ctx.settings
        s = ctx.samples
        qual, cap, al = ctx.quality, ctx.capability, ctx.alignment
        w = ctx.weight()
        wA = w * al["A"]
        fits = ctx.fits()
        c_t, c_t_reason = ctx.target_capability
        R_i = pd.Series(difficulty_match(cap["c"].to_numpy(), c_t, st.sigma), index=ctx.index)
        m = wA * R_i
        m_reason = sample_reasons(qual, al, cap, c_t_reason, m)

        alpha = (1.0 - st.ci) / 2.0
        rows, reasons = {}, {}
        for d in ctx.datasets:
            sel = (s["dataset"] == d).to_numpy()
            wa_d = wA[sel].to_numpy(dtype=float)
            known = ~np.isnan(wa_d)
            c_d, c_d_reason = ctx.mean_capability(s.loc[sel, "question_hash"])
            R_d = float(difficulty_match(c_d, c_t, st.sigma))
            mean_wa = float(np.mean(wa_d[known])) if known.any() else float("nan")
            value = R_d * mean_wa
            lo = hi = se = float("nan")
            if known.any() and not np.isnan(R_d) and st.n_boot > 0:
                reps = bootstrap_dmc(wa_d, cap["c"][sel].to_numpy(dtype=float),
                                     s.loc[sel, "question_hash"].to_numpy(), c_t, st.sigma, st.n_boot,
                                     _rng(st.seed, d))
                if np.isfinite(reps).any():
                    lo, hi = (float(x) for x in np.nanquantile(reps, [alpha, 1.0 - alpha]))
                    se = float(np.nanstd(reps, ddof=1)) if np.isfinite(reps).sum() > 1 else float("nan")
            q_d, A_d, f_d = qual["q"][sel], al["A"][sel], fits[sel]
            rows[d] = {
                "dmc_lo": lo, "dmc_hi": hi, "dmc_se": se,
                "Q": float(q_d.mean()) if q_d.notna().any() else float("nan"),
                "A": float(A_d.mean()) if A_d.notna().any() else float("nan"),
                "F": float(f_d.mean()) if f_d.notna().any() else float("nan"),
                "C_D": c_d, "C_T": c_t, "R": R_d,
                "mean_wA": mean_wa,
                "n_scored": int(known.sum()),
                "n_pseudo_gold": int(qual["pseudo_gold"][sel].sum()),
            }
            if not known.any():
                reasons[d] = "no sample with known quality and alignment"
            elif np.isnan(R_d):
                reasons[d] = f"C_T: {c_t_reason}" if c_t_reason else f"C_D: {c_d_reason}"
            rows[d]["dmc"] = value
        ds = pd.DataFrame.from_dict(rows, orient="index")
        extra_s = pd.DataFrame({
            "q": qual["q"], "q_reason": qual["q_reason"], "answer": qual["answer"],
            "pseudo_gold": qual["pseudo_gold"], "w": w,
            "c": cap["c"], "c_reason": cap["c_reason"], "R": R_i,
            "A": al["A"], "A_reason": al["A_reason"], "n_content": al["n_content"],
        })
        return MetricResult(
            sample_values=m.astype(float),
            sample_reasons=m_reason.astype(object),
            dataset_values=ds["dmc"].astype(float),
            dataset_reasons=pd.Series(reasons, index=ds.index, dtype=object),
            sample_extra=extra_s,
            dataset_extra=ds.drop(columns=["dmc"]),
        )
