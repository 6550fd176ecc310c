"""The report's figures, rendered with matplotlib's Agg backend to PNG bytes.

Each function takes plain data (frames, dicts) and returns PNG bytes, or None when there is
nothing to draw (the caller says why in the report).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 110
_DIRECTION_NOTE = {"higher": "higher is better", "lower": "lower is better", "none": "no direction"}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _finite(x: float | None) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _rho_text(rho: float | None, lo: float | None, hi: float | None) -> str:
    if not _finite(rho):
        return "ρ = n/a"
    if _finite(lo) and _finite(hi):
        return f"ρ = {rho:+.2f} [{lo:+.2f}, {hi:+.2f}]"
    return f"ρ = {rho:+.2f}"


def metric_scatter(
    frame: pd.DataFrame,
    metrics: Sequence[str],
    rho: Mapping[str, tuple[float | None, float | None, float | None]],
    directions: Mapping[str, str] | None = None,
    target: str = "accuracy",
    label: str = "dataset",
    ncols: int = 3,
) -> bytes | None:
    """One panel per metric: the metric (x) against post-training accuracy (y) per dataset, a
    least-squares fit line, and Spearman ρ with its CI in the title.

    frame: one row per dataset with columns `label`, `target` and each metric (and optionally
    `accuracy_std`, drawn as error bars).
    rho: metric -> (rho, lo, hi).
    """
    metrics = [m for m in metrics if m in frame.columns]
    if not metrics or target not in frame.columns:
        return None
    directions = directions or {}
    n = len(metrics)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    y_all = pd.to_numeric(frame[target], errors="coerce").to_numpy(dtype=float)
    for ax, m in zip(axes.flat, metrics):
        x = pd.to_numeric(frame[m], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(y_all)
        if "accuracy_std" in frame.columns:  # spread over seeds, when there are several
            err = pd.to_numeric(frame["accuracy_std"], errors="coerce").to_numpy(dtype=float)[ok]
            if np.isfinite(err).any():
                ax.errorbar(x[ok], 100 * y_all[ok], yerr=100 * np.nan_to_num(err), fmt="none", ecolor="#9ecae1",
                            lw=1, zorder=1)
        ax.scatter(x[ok], 100 * y_all[ok], s=28, color="#1f77b4", zorder=3)
        for xi, yi, name in zip(x[ok], y_all[ok], frame.loc[ok, label].astype(str)):
            ax.annotate(name, (xi, 100 * yi), fontsize=7, xytext=(3, 3), textcoords="offset points", color="#444")
        if ok.sum() >= 2 and np.ptp(x[ok]) > 0:
            slope, icpt = np.polyfit(x[ok], 100 * y_all[ok], 1)
            xs = np.linspace(x[ok].min(), x[ok].max(), 50)
            ax.plot(xs, slope * xs + icpt, color="#d62728", lw=1.2, zorder=2)
        r = rho.get(m, (None, None, None))
        ax.set_title(f"{m}: {_rho_text(*r)}", fontsize=9.5)
        ax.set_xlabel(f"{m} ({_DIRECTION_NOTE.get(directions.get(m, ''), 'direction unknown')})", fontsize=8)
        ax.set_ylabel("post-training accuracy (%)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if not ok.any():
            ax.text(0.5, 0.5, "no finite values", transform=ax.transAxes, ha="center", va="center", color="#888")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def dmc_components(datasets: pd.DataFrame, components: Sequence[str] = ("dmc", "Q", "A", "R", "C_D")) -> bytes | None:
    """Grouped bars per dataset: DMC (with its bootstrap CI when `dmc_lo`/`dmc_hi` are present)
    and its components, all in [0, 1]."""
    cols = [c for c in components if c in datasets.columns]
    if "dataset" not in datasets.columns or not cols:
        return None
    d = datasets.reset_index(drop=True)
    n, k = len(d), len(cols)
    width = 0.8 / k
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * n + 2), 3.8))
    xs = np.arange(n)
    colors = plt.get_cmap("tab10")
    for j, c in enumerate(cols):
        vals = pd.to_numeric(d[c], errors="coerce").to_numpy(dtype=float)
        kw = {}
        if c == "dmc" and {"dmc_lo", "dmc_hi"} <= set(d.columns):
            lo = pd.to_numeric(d["dmc_lo"], errors="coerce").to_numpy(dtype=float)
            hi = pd.to_numeric(d["dmc_hi"], errors="coerce").to_numpy(dtype=float)
            err = np.vstack([np.clip(vals - lo, 0, None), np.clip(hi - vals, 0, None)])
            kw = {"yerr": np.nan_to_num(err), "capsize": 2, "error_kw": {"lw": 0.8}}
        ax.bar(xs + (j - (k - 1) / 2) * width, np.nan_to_num(vals), width, label=c, color=colors(j), **kw)
    ax.set_xticks(xs, d["dataset"].astype(str), rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.18)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("value (range [0, 1])")
    ax.set_title("DMC and its components per candidate dataset (higher DMC = more compatible)")
    ax.legend(fontsize=8, ncol=k, loc="upper center", frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D")


def _line_style(j: int) -> dict:
    """Color, line style and marker of the j-th series: tab10 repeats after 10, so the style changes with it."""
    return {"color": plt.get_cmap("tab10")(j % 10), "ls": _LINESTYLES[(j // 10) % 4], "marker": _MARKERS[(j // 10) % 4]}


def dmc_over_training(events: Sequence[Mapping], title: str = "DMC of each dataset during training") -> bytes | None:
    """Lines per dataset: the score from each re-scoring event (`{"step", "scores": {ds: v}}`), with
    a band of +-1 standard error where the event carries the re-score's `noise` ({ds: s.e.})."""
    events = [e for e in events if e.get("scores")]
    if not events:
        return None
    names = list(events[0]["scores"])
    steps = [int(e["step"]) for e in events]
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    for j, name in enumerate(names):
        ys = np.array([np.nan if e["scores"].get(name) is None else e["scores"][name] for e in events], dtype=float)
        style = _line_style(j)
        ax.plot(steps, ys, ms=3, label=name, **style)
        se = np.array([np.nan if (e.get("noise") or {}).get(name) is None else e["noise"][name] for e in events],
                      dtype=float)
        if np.isfinite(se).any():
            ax.fill_between(steps, ys - se, ys + se, alpha=0.12, color=style.get("color"))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("DMC (higher = more compatible)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return _png(fig)


def selection_timeline(mixtures: Sequence[Mapping], total_steps: int | None = None,
                       title: str = "Mixture over candidate datasets") -> bytes | None:
    """Stacked areas: the mixture weight of each dataset from each decision step until the next
    (`{"step", "mixture": {ds: w}}`), up to `total_steps`."""
    mixtures = [m for m in mixtures if m.get("mixture")]
    if not mixtures:
        return None
    names = list(mixtures[0]["mixture"])
    steps = [int(m["step"]) for m in mixtures]
    end = max(total_steps or 0, steps[-1] + 1)
    # a step function: each decision holds until the next one
    xs = [s for s in steps for _ in (0, 1)][1:] + [end]
    W = np.array([[float(m["mixture"].get(n) or 0.0) for n in names] for m in mixtures])
    Ws = np.repeat(W, 2, axis=0)
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    ax.stackplot(xs, Ws.T, labels=names, alpha=0.85, colors=plt.get_cmap("tab20").colors[: len(names)])
    ax.set_xlim(0, end)
    ax.set_ylim(0, 1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("share of training rows")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return _png(fig)


def accuracy_curves(curves: Mapping[str, Sequence[Mapping]], title: str = "Accuracy during training") -> bytes | None:
    """One line per strategy: eval accuracy (%) at each eval step (`[{"step", "accuracy"}]`)."""
    curves = {k: [p for p in v if _finite(p.get("accuracy"))] for k, v in curves.items()}
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    for name, pts in curves.items():
        pts = sorted(pts, key=lambda p: p["step"])
        ax.plot([p["step"] for p in pts], [100 * p["accuracy"] for p in pts], marker="o", ms=3, label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("eval accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def bars(values: Mapping[str, float | None], errors: Mapping[str, float | None] | None = None,
         title: str = "", ylabel: str = "accuracy (%)", highlight: str | None = None,
         reference: tuple[str, float] | None = None) -> bytes | None:
    """Horizontal bars (values in [0, 1], drawn as %), optional ± errors, one bar highlighted and
    an optional dashed reference line (label, value)."""
    items = [(k, v) for k, v in values.items() if _finite(v)]
    if not items:
        return None
    names = [k for k, _ in items]
    vals = np.array([100 * float(v) for _, v in items])
    err = None
    if errors:
        err = np.array([100 * float(errors.get(k) or 0.0) if _finite(errors.get(k)) else 0.0 for k in names])
    fig, ax = plt.subplots(figsize=(6.5, 0.38 * len(names) + 1.4))
    colors = ["#d62728" if k == highlight else "#1f77b4" for k in names]
    ax.barh(np.arange(len(names)), vals, xerr=err, color=colors, capsize=2)
    ax.set_yticks(np.arange(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(ylabel)
    if reference is not None and _finite(reference[1]):
        ax.axvline(100 * reference[1], ls="--", color="#555", lw=1)
        ax.text(100 * reference[1], -0.6, f" {reference[0]}", fontsize=7, color="#555", va="bottom")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)
