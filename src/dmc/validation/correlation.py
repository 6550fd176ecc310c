"""Correlation of a metric with post-training accuracy: Spearman, Kendall and Pearson with
percentile-bootstrap confidence intervals (datasets resampled with replacement, seeded).

Every coefficient is in [-1, 1]; +1 means the metric orders (Spearman, Kendall) or linearly tracks
(Pearson) accuracy perfectly, -1 the reverse. A metric whose direction is "lower is better" is
reported as computed (a good one has negative rho); ``signed`` multiplies by the direction's sign
so that, for every metric, higher signed rho = better predictor.

Undefined values are NaN with a reason (too few pairs, constant input), never a crash or a 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

METHODS = ("spearman", "kendall", "pearson")
MIN_PAIRS = 3
# How a metric's declared direction turns rho into "higher = better predictor".
DIRECTION_SIGN = {"higher": 1.0, "lower": -1.0, "none": 1.0}


@dataclass(frozen=True)
class Correlation:
    """One coefficient between a metric and accuracy.

    value: the coefficient in [-1, 1], NaN when undefined (``reason`` says why).
    lo, hi: percentile-bootstrap CI at level ``ci`` (NaN when fewer than half the resamples are
        defined, or when ``value`` is NaN).
    n: pairs with both values finite; n_missing: pairs dropped for a NaN on either side.
    n_boot_valid: resamples whose coefficient was defined (resamples that draw a constant
        sample are undefined and left out).
    p_value: scipy's two-sided p-value for no association (NaN when undefined).
    """

    method: str
    value: float
    lo: float
    hi: float
    n: int
    n_missing: int
    n_boot: int
    n_boot_valid: int
    ci: float
    p_value: float
    reason: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _nan_result(method: str, n: int, n_missing: int, n_boot: int, ci: float, reason: str) -> Correlation:
    nan = float("nan")
    return Correlation(method, nan, nan, nan, n, n_missing, n_boot, 0, ci, nan, reason)


def _point(method: str, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input is handled by the callers
        if method == "spearman":
            r = stats.spearmanr(x, y)
        elif method == "kendall":
            r = stats.kendalltau(x, y)
        else:
            r = stats.pearsonr(x, y)
    return float(r.statistic), float(r.pvalue)


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of (m, n) arrays; NaN where a row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    num = (a * b).sum(axis=1)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 1e-300, num / np.where(den > 0, den, 1.0), np.nan)
    return np.clip(r, -1.0, 1.0)


def _replicates(method: str, x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    xs, ys = x[idx], y[idx]
    if method == "pearson":
        return _rowwise_pearson(xs, ys)
    if method == "spearman":
        return _rowwise_pearson(stats.rankdata(xs, axis=1), stats.rankdata(ys, axis=1))
    return _rowwise_kendall(xs, ys)


def _rowwise_kendall(a: np.ndarray, b: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Kendall's tau-b of each row pair: sum(sx*sy) / sqrt(sum(sx^2) sum(sy^2)) over pairs i<j,
    with s = sign of the pairwise difference (ties give 0, as tau-b counts them); NaN where a
    row is constant."""
    m, n = a.shape
    iu = np.triu_indices(n, k=1)
    out = np.empty(m)
    for s in range(0, m, chunk):
        sa = np.sign(a[s:s + chunk, :, None] - a[s:s + chunk, None, :])[:, iu[0], iu[1]]
        sb = np.sign(b[s:s + chunk, :, None] - b[s:s + chunk, None, :])[:, iu[0], iu[1]]
        den = np.sqrt((sa * sa).sum(axis=1) * (sb * sb).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s:s + chunk] = np.where(den > 0, (sa * sb).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)
    return out


def correlate(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    method: str = "spearman",
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> Correlation:
    """Correlation of `x` (a metric per dataset) with `y` (accuracy per dataset), with a
    percentile-bootstrap CI over the pairs resampled with replacement (seeded by `seed`).

    Pairs where either value is NaN/inf are dropped and counted in ``n_missing``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown correlation method {method!r}; choose from {METHODS}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {xa.shape} and {ya.shape}")
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    n, n_missing = int(ok.sum()), int((~ok).sum())
    if n < MIN_PAIRS:
        return _nan_result(method, n, n_missing, n_boot, ci, f"only {n} pair(s) with both values finite; need >= {MIN_PAIRS}")
    if np.ptp(xa) == 0:
        return _nan_result(method, n, n_missing, n_boot, ci, "metric is constant across the datasets")
    if np.ptp(ya) == 0:
        return _nan_result(method, n, n_missing, n_boot, ci, "accuracy is constant across the datasets")
    value, p = _point(method, xa, ya)
    lo = hi = float("nan")
    valid = 0
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(n_boot, n))
        reps = _replicates(method, xa, ya, idx)
        reps = reps[np.isfinite(reps)]
        valid = int(reps.size)
        if valid >= max(1, n_boot // 2):
            a = (1.0 - ci) / 2.0
            lo, hi = (float(v) for v in np.quantile(reps, [a, 1.0 - a]))
    return Correlation(method, value, lo, hi, n, n_missing, n_boot, valid, ci, p, None)


def correlation_table(
    frame: pd.DataFrame,
    metrics: Mapping[str, str],
    target: str = "accuracy",
    *,
    methods: Sequence[str] = METHODS,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (metric, method): the correlation of ``frame[metric]`` with ``frame[target]``.

    metrics: metric name -> declared direction ("higher", "lower" or "none"). Columns: metric,
    direction, method, rho, lo, hi, p_value, n, n_missing, n_boot_valid, signed, signed_lo,
    signed_hi, reason. ``signed`` = rho times +1 (higher is better / no direction) or -1 (lower
    is better): higher signed = better predictor. A metric missing from ``frame`` gives NaN rows
    with a reason.
    """
    if target not in frame.columns:
        raise KeyError(f"target column {target!r} not in the frame (columns: {list(frame.columns)})")
    rows = []
    y = pd.to_numeric(frame[target], errors="coerce").to_numpy(dtype=float)
    for name, direction in metrics.items():
        if direction not in DIRECTION_SIGN:
            raise ValueError(f"metric {name!r}: direction must be one of {list(DIRECTION_SIGN)}, got {direction!r}")
        sign = DIRECTION_SIGN[direction]
        for method in methods:
            if name not in frame.columns:
                c = _nan_result(method, 0, len(frame), n_boot, ci, f"metric {name!r} was not computed")
            else:
                x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
                c = correlate(x, y, method, n_boot=n_boot, ci=ci, seed=seed)
            s_lo, s_hi = (c.lo, c.hi) if sign > 0 else (-c.hi, -c.lo)
            rows.append({
                "metric": name, "direction": direction, "method": method,
                "rho": c.value, "lo": c.lo, "hi": c.hi, "p_value": c.p_value,
                "n": c.n, "n_missing": c.n_missing, "n_boot_valid": c.n_boot_valid,
                "signed": sign * c.value, "signed_lo": s_lo, "signed_hi": s_hi,
                "reason": c.reason,
            })
    return pd.DataFrame(rows)


def headline(table: pd.DataFrame, method: str = "spearman") -> pd.DataFrame:
    """The `method` rows of a :func:`correlation_table`, best predictor first (by signed rho;
    NaN last)."""
    t = table[table["method"] == method].copy()
    t = t.sort_values("signed", ascending=False, na_position="last", kind="stable")
    return t.reset_index(drop=True)


def fmt_rho(value: float, lo: float, hi: float) -> str:
    """'0.72 [0.31, 0.93]', or 'n/a' for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return f"{value:+.2f}"
    return f"{value:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def seed_agreement(runs: pd.DataFrame) -> dict:
    """How far the pilots' seed noise caps any metric's Spearman rho with the seed-mean accuracy.

    runs: one row per pilot with `dataset`, `seed` and `accuracy` (NaN for a failed pilot).
    Returns mean_rho: the mean Spearman between every two seeds' accuracies over the datasets both
    finished, in [-1, 1]; reliability: the Spearman-Brown reliability of the mean over the n seeds,
    n r / (1 + (n - 1) r), in (0, 1]; ceiling: its square root, roughly the rho that a metric
    ranking the datasets by their noise-free accuracy would reach against the seed mean (a metric's
    rho well above it is luck). NaN with a reason when there are fewer than two seeds, fewer than
    MIN_PAIRS shared datasets, or seeds that do not agree (mean_rho <= 0).
    """
    nan = float("nan")
    out = {"n_seeds": 0, "pairs": [], "mean_rho": nan, "reliability": nan, "ceiling": nan, "reason": None}
    acc = runs.pivot_table(index="dataset", columns="seed", values="accuracy", aggfunc="mean")
    acc = acc.loc[:, acc.notna().sum() >= MIN_PAIRS]
    seeds = list(acc.columns)
    out["n_seeds"] = len(seeds)
    if len(seeds) < 2:
        out["reason"] = f"{len(seeds)} seed(s) with >= {MIN_PAIRS} finished pilots; need 2"
        return out
    for i, a in enumerate(seeds):
        for b in seeds[i + 1:]:
            c = correlate(acc[a].to_numpy(), acc[b].to_numpy(), "spearman", n_boot=0)
            out["pairs"].append({"seeds": [int(a), int(b)], "rho": c.value, "n": c.n, "reason": c.reason})
    rhos = [p["rho"] for p in out["pairs"] if not math.isnan(p["rho"])]
    if not rhos:
        out["reason"] = "no two seeds share enough varying accuracies"
        return out
    r = float(np.mean(rhos))
    out["mean_rho"] = r
    if r <= 0:
        out["reason"] = f"the seeds do not agree on the datasets' order (mean rho {r:+.2f})"
        return out
    n = len(seeds)
    out["reliability"] = n * r / (1.0 + (n - 1) * r)
    out["ceiling"] = math.sqrt(out["reliability"])
    return out
