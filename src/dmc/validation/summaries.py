"""Turn finished runs into the E1/E2/E3 result documents (pure functions: results in, tables out)
and write them to the run directory (see dmc.validation.files).

Accuracies are greedy pass@1 on the eval set, in [0, 1], higher = better; NaN (null in JSON) when
a run failed or nothing could be graded, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dmc.validation import files
from dmc.validation.correlation import METHODS, correlation_table, headline, seed_agreement
from dmc.io import atomic_write, atomic_write_json, jsonable

# Columns of the scores' datasets table carried into E1's tables beside the metrics.
COMPONENTS = ("dmc_lo", "dmc_hi", "Q", "A", "C_D", "C_T", "R")
_RUN_FIELDS = ("dataset", "seed", "accuracy", "status", "error", "key", "seconds")


def _mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan"), int(v.size)


def metric_directions(metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    return {name: str(info.get("direction", "none")) for name, info in metrics.items()}


def e1_tables(
    pilots: Sequence[Mapping[str, Any]],
    scores: pd.DataFrame,
    metrics: Mapping[str, Mapping[str, Any]],
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, list[dict]]]:
    """E1's tables from the pilot results and the initial student's scores.

    pilots: one result per (dataset, seed) with `accuracy` (NaN when failed).
    scores: one row per dataset (column `dataset`) with each metric's value.
    metrics: metric name -> its declaration (at least `direction`).
    Returns (pilots frame, per-dataset frame, correlations, per-seed Spearman rows).
    The correlations use each dataset's mean accuracy over its finished seeds.
    """
    if "dataset" not in scores.columns:
        raise KeyError(f"the scores table has no 'dataset' column (columns: {list(scores.columns)})")
    keep = ["dataset"] + [c for c in (*metrics, *COMPONENTS) if c in scores.columns]
    sc = scores[keep].drop_duplicates("dataset")
    runs = pd.DataFrame([{k: p.get(k) for k in _RUN_FIELDS} for p in pilots], columns=list(_RUN_FIELDS))
    runs["accuracy"] = pd.to_numeric(runs["accuracy"], errors="coerce").astype(float)
    unknown = sorted(set(runs["dataset"]) - set(sc["dataset"]))
    if unknown:
        raise KeyError(f"pilots for datasets {unknown} have no scores")
    pilots_df = runs.merge(sc, on="dataset", how="left")

    rows = []
    for name in dict.fromkeys(runs["dataset"]):
        g = runs[runs["dataset"] == name]
        mean, std, n_ok = _mean_std(g["accuracy"].tolist())
        rows.append({"dataset": name, "accuracy": mean, "accuracy_std": std, "n_seeds": n_ok,
                     "n_failed": int((g["status"] == "failed").sum())})
    ds = pd.DataFrame(rows).merge(sc, on="dataset", how="left")
    directions = metric_directions(metrics)
    corr = correlation_table(ds, directions, "accuracy", n_boot=n_boot, ci=ci, seed=seed)
    per_seed = {}
    for s in sorted(runs["seed"].dropna().unique()):
        one = runs[runs["seed"] == s][["dataset", "accuracy"]].merge(sc, on="dataset", how="left")
        t = correlation_table(one, directions, "accuracy", methods=["spearman"], n_boot=n_boot, ci=ci, seed=seed)
        per_seed[str(int(s))] = t.to_dict(orient="records")
    return pilots_df, ds, corr, per_seed


def e1_document(pilots_df: pd.DataFrame, datasets: pd.DataFrame, corr: pd.DataFrame,
                per_seed: Mapping[str, list[dict]], metrics: Mapping[str, Mapping[str, Any]],
                **info: Any) -> dict[str, Any]:
    """The e1.json document: `info` (student, train config, seeds, ci ...) plus the tables."""
    return {
        "experiment": "e1",
        **info,
        "metrics": {k: {"direction": v.get("direction"), "version": v.get("version")} for k, v in metrics.items()},
        "methods": list(METHODS),
        "pilots": pilots_df[list(_RUN_FIELDS)].to_dict(orient="records"),
        "datasets": datasets.to_dict(orient="records"),
        "correlations": corr.to_dict(orient="records"),
        "headline": headline(corr)[["metric", "direction", "rho", "lo", "hi", "signed", "n", "reason"]]
        .to_dict(orient="records"),
        "per_seed": dict(per_seed),
        "seed_agreement": seed_agreement(pilots_df),
    }


def write_e1(out: str | Path, doc: Mapping[str, Any], pilots_df: pd.DataFrame, corr: pd.DataFrame) -> None:
    out = Path(out)
    atomic_write(out / files.E1_PILOTS, lambda tmp: pilots_df.to_parquet(tmp, index=False))
    atomic_write(out / files.E1_CORRELATIONS, lambda tmp: corr.to_csv(tmp, index=False))
    atomic_write_json(out / files.E1_JSON, doc)


def e2_document(selectors: Sequence[Mapping[str, Any]], e1_datasets: pd.DataFrame | None = None,
                **info: Any) -> dict[str, Any]:
    """The e2.json document.

    selectors: one per metric: {metric, direction, chosen, n_samples, per_seed: [run results]}.
    Accuracy per selector = mean over its finished seeds (std over seeds beside it).
    e1_datasets: E1's per-dataset accuracies, for the references (best single dataset, mean);
    info (train config, seeds, initial_accuracy ...) is stored as given.
    """
    out = []
    for s in selectors:
        runs = [{k: r.get(k) for k in ("seed", "accuracy", "status", "error", "key")} for r in s.get("per_seed", [])]
        mean, std, n_ok = _mean_std([float("nan") if r["accuracy"] is None else float(r["accuracy"]) for r in runs])
        out.append({**{k: v for k, v in s.items() if k != "per_seed"}, "accuracy": mean, "accuracy_std": std,
                    "n_seeds": n_ok, "per_seed": runs})
    ref: dict[str, Any] = {"initial_accuracy": info.get("initial_accuracy")}
    if e1_datasets is not None and len(e1_datasets) and e1_datasets["accuracy"].notna().any():
        best = e1_datasets.loc[e1_datasets["accuracy"].idxmax()]
        ref["oracle"] = {"dataset": best["dataset"], "accuracy": float(best["accuracy"])}
        ref["mean_dataset"] = float(e1_datasets["accuracy"].mean())
    return {"experiment": "e2", **info, "selectors": out, "reference": ref}


def mean_curve(curves: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Mean accuracy per step over several runs' curves ([{step, accuracy}]); NaN-skipping."""
    by: dict[int, list[float]] = {}
    for c in curves:
        for p in c:
            a = p.get("accuracy")
            by.setdefault(int(p["step"]), []).append(float("nan") if a is None else float(a))
    out = []
    for step in sorted(by):
        mean, std, n = _mean_std(by[step])
        out.append({"step": step, "accuracy": mean, "accuracy_std": std, "n": n})
    return out


def rescore_noise(runs: Sequence[Mapping[str, Any]]) -> float | None:
    """Mean standard error of the re-scores in `runs` (their `scores[*].noise`); None without any."""
    values = [float(v) for r in runs for e in (r.get("scores") or []) for v in (e.get("noise") or {}).values()
              if v is not None and math.isfinite(float(v))]
    return float(np.mean(values)) if values else None


def e3_document(strategies: Mapping[str, Sequence[Mapping[str, Any]]], **info: Any) -> dict[str, Any]:
    """The e3.json document.

    strategies: name -> one run result per seed, each with accuracy, status, error, curve
    ([{step, accuracy}]), mixtures ([{step, mixture}]), scores ([{step, scores}]), rows_drawn.
    The strategy's curve is the mean over seeds; mixtures and scores are the first seed's;
    `rescore_noise` is the mean bootstrap standard error of the re-scores over every seed, dataset
    and re-score (None for strategies that never re-score).
    """
    out = {}
    for name, runs in strategies.items():
        runs = list(runs)
        mean, std, n_ok = _mean_std([float("nan") if r.get("accuracy") is None else float(r["accuracy"])
                                     for r in runs])
        first = runs[0] if runs else {}
        out[name] = {
            "final_accuracy": mean, "final_accuracy_std": std, "n_seeds": n_ok,
            "curve": mean_curve([r.get("curve") or [] for r in runs]),
            "mixtures": list(first.get("mixtures") or []),
            "scores": list(first.get("scores") or []),
            "rows_drawn": first.get("rows_drawn"),
            "rescore_noise": rescore_noise(runs),
            "per_seed": [{k: r.get(k) for k in ("seed", "accuracy", "status", "error", "key", "seconds",
                                                "rescore_seconds")} for r in runs],
        }
    return {"experiment": "e3", **info, "strategies": out}


def write_json(out: str | Path, name: str, doc: Mapping[str, Any]) -> Path:
    return atomic_write_json(Path(out) / name, jsonable(dict(doc)))
