"""Static data selection from scores (DESIGN.md §5): pure — frames and samples in, samples out.

Policies, spelled NAME[:ARG] (dmc.selection.weights.parse_policy_spec, the syntax of the
curriculum's policies too):

- ``top1``: the best dataset by the metric.
- ``topk:K``: the K best datasets, sharing the budget equally.
- ``proportional``: every scored dataset, budget shares proportional to its score.
- ``softmax[:TAU]``: budget shares softmax(score / TAU), TAU > 0 (default 0.05).
- ``samples:top-fraction[:F]``: the best samples by their per-sample score (DMC: m_i), across all
  datasets, or with ``within=True`` the same top fraction of each dataset; F in (0, 1] is the
  share of scored samples to keep (default: all, cut by the budget).

The old spellings ``mix:softmax`` / ``mix:proportional`` (with a separate tau) are refused with
the new one. Weights come from dmc.selection.weights, shared with the curriculum.

Budgets count samples or response tokens (the student's tokenizer, from the scores' ``n_tokens``).
Within a dataset chosen as a whole, samples are drawn in the package's seeded order
(dmc.stats.subsample.seeded_order, keyed by dataset name and sample content hash), and ties
between equal sample scores are broken the same way; everything is deterministic for a given seed
and independent of file order. A dataset or sample without a score is left out, and the manifest
says why.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from dmc import __version__
from dmc.data.schema import CandidateDataset, Sample
from dmc.metrics.base import METRICS
from dmc.metrics.results import ScoreReport
from dmc.selection.allocate import round_counts, water_fill
from dmc.selection.weights import (
    DEFAULT_TAU,
    TAU,
    PolicyArg,
    PolicySpec,
    parse_policy_spec,
    policy_usage,
    proportional_weights,
    rank_by_score,
    softmax_weights,
)
from dmc.stats.subsample import seeded_order

GRAMMAR: dict[str, PolicyArg | None] = {
    "top1": None,
    "topk": PolicyArg("K", int, lambda x: x >= 1, "a positive integer", "3", required=True),
    "proportional": None,
    "softmax": TAU,
    "samples:top-fraction": PolicyArg("F", float, lambda x: 0.0 < x <= 1.0, "a number in (0, 1]", "0.3"),
}
DATASET_POLICIES = ("top1", "topk", "proportional", "softmax")
SAMPLE_POLICIES = ("samples:top-fraction",)
POLICIES = tuple(policy_usage(GRAMMAR))
Unit = Literal["samples", "tokens"]
Order = Literal["auto", "desc", "asc"]


@dataclass
class Selection:
    """The selected samples (in selection order) and a JSON-serializable manifest of how."""

    samples: list[Sample]
    manifest: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)


def parse_policy(policy: str) -> PolicySpec:
    """(name, arg) of a selection policy: ("topk", K), ("softmax", TAU or None),
    ("samples:top-fraction", F or None), ("top1" | "proportional", None); ValueError when invalid."""
    return parse_policy_spec(policy, GRAMMAR, what="selection policy")


def _frames(scores: Any) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict]:
    if isinstance(scores, ScoreReport):
        return scores.datasets, scores.samples, scores.meta
    if isinstance(scores, tuple) and len(scores) == 2:
        return scores[0], scores[1], {}
    if isinstance(scores, pd.DataFrame):
        return (None, scores, {}) if "sample_hash" in scores.columns else (scores, None, {})
    raise TypeError("scores must be a ScoreReport, a datasets or samples DataFrame, or a (datasets, samples) "
                    f"tuple; got {type(scores).__name__}")


def _direction(metric: str, order: Order) -> tuple[bool, str]:
    """(descending, note): which end of the metric is 'best'."""
    if order != "auto":
        return order == "desc", f"order {order} (explicit)"
    m = METRICS.get(metric)
    if m is None or m.direction == "higher":
        return True, "descending (higher is better)"
    if m.direction == "lower":
        return False, "ascending (lower is better)"
    return True, f"descending ({metric} has no preferred direction; pass order='asc' to reverse)"


def _sample_column(metric: str) -> str:
    m = METRICS.get(metric)
    return m.column if m is not None else metric


def _index_pool(pool: Sequence[CandidateDataset]) -> dict[str, CandidateDataset]:
    out: dict[str, CandidateDataset] = {}
    for ds in pool:
        if ds.name in out:
            raise ValueError(f"pool has two datasets named {ds.name!r}")
        out[ds.name] = ds
    return out


def _token_counts(samples_df: pd.DataFrame | None) -> dict[tuple[str, str], int]:
    """(dataset, sample_id) -> response tokens, from the scores' samples table."""
    if samples_df is None or "n_tokens" not in samples_df.columns:
        return {}
    df = samples_df[samples_df["n_tokens"].notna()]
    return {(str(d), str(i)): int(n) for d, i, n in zip(df["dataset"], df["sample_id"], df["n_tokens"])}


def _check_fresh(samples_df: pd.DataFrame, pool: dict[str, CandidateDataset]) -> None:
    """Scores of the pool's datasets must describe their current samples (same content hash)."""
    hashes = {(ds.name, str(s.id)): s.hash for ds in pool.values() for s in ds}
    for d, i, h in zip(samples_df["dataset"], samples_df["sample_id"], samples_df["sample_hash"]):
        if str(d) not in pool:
            continue  # a scored dataset left out of this pool is simply not selectable
        have = hashes.get((str(d), str(i)))
        if have is None:
            raise ValueError(f"scores name sample {i!r} of dataset {d!r}, which is not in the pool")
        if have != h:
            raise ValueError(f"dataset {d!r}, sample {i!r}: content changed since it was scored "
                             f"(hash {h} in the scores, {have} in the pool); re-run `dmc score`")


def _draw_order(ds: CandidateDataset, seed: int) -> list[Sample]:
    """The order in which a dataset chosen as a whole gives its samples: seeded, keyed by the
    dataset's name and each sample's content hash (independent orders for different datasets)."""
    return seeded_order(ds.samples, lambda s: f"{ds.name}|{s.hash}", seed)


def _take(samples: list[Sample], dataset: str, quota: float, unit: Unit,
          tokens: dict[tuple[str, str], int], skipped: Counter) -> list[Sample]:
    """The first samples (in the given order) that fit ``quota`` samples or tokens."""
    if unit == "samples":
        return samples[: int(quota)]
    out, used = [], 0
    for s in samples:
        n = tokens.get((dataset, str(s.id)))
        if n is None:
            skipped["no token count"] += 1
            continue
        if used + n <= quota + 1e-9:
            out.append(s)
            used += n
    return out


def _capacity(ds: CandidateDataset, unit: Unit, tokens: dict[tuple[str, str], int]) -> float:
    if unit == "samples":
        return float(len(ds))
    return float(sum(tokens.get((ds.name, str(s.id)), 0) for s in ds))


def select(
    scores: Any,
    pool: Sequence[CandidateDataset],
    *,
    policy: str = "top1",
    budget: float | None = None,
    unit: Unit = "samples",
    metric: str = "dmc",
    within: bool = False,
    order: Order = "auto",
    seed: int = 0,
) -> Selection:
    """Selects training samples from ``pool`` using ``scores`` (see the module docstring).

    scores: a ScoreReport, a datasets table (dataset policies), a samples table (sample policies
    and token budgets), or a (datasets, samples) tuple. metric: a registered metric name or a
    column; its direction decides which end is best unless ``order`` says otherwise. budget: the
    number of samples or response tokens (``unit``) to select; None takes every sample of the
    chosen datasets (top1/topk) or the whole fraction F (``samples:top-fraction:F``). The softmax
    temperature and the fraction are part of ``policy`` (``softmax:0.1``, ``samples:top-fraction:0.3``).
    """
    kind, arg = parse_policy(policy)
    k = int(arg) if kind == "topk" and arg is not None else None
    tau = float(arg) if kind == "softmax" and arg is not None else DEFAULT_TAU
    fraction = float(arg) if kind == "samples:top-fraction" and arg is not None else None
    if unit not in ("samples", "tokens"):
        raise ValueError(f"budget unit must be 'samples' or 'tokens', got {unit!r}")
    if budget is not None and not budget > 0:
        raise ValueError(f"budget must be > 0, got {budget!r}")
    if kind not in SAMPLE_POLICIES and within:
        raise ValueError(f"within applies only to samples:top-fraction, not to {policy!r}")
    datasets_df, samples_df, meta = _frames(scores)
    pools = _index_pool(pool)
    if samples_df is not None and len(samples_df):
        _check_fresh(samples_df, pools)
    tokens = _token_counts(samples_df)
    if unit == "tokens" and samples_df is None:
        raise ValueError("a token budget needs per-sample token counts: pass the samples table or a ScoreReport")
    descending, order_note = _direction(metric, order)

    manifest: dict[str, Any] = {
        "policy": policy,
        "params": {"budget": budget, "unit": unit, "metric": metric, "order": order_note, "seed": seed,
                   **({"tau": tau} if kind == "softmax" else {}),
                   **({"k": k} if kind == "topk" else {}),
                   **({"fraction": fraction, "within": within} if kind == "samples:top-fraction" else {})},
        "dmc_version": __version__,
        "versions": {"metrics": {n: v.get("version") for n, v in (meta.get("metrics") or {}).items()},
                     "settings": meta.get("settings"),
                     "student_fingerprint": (meta.get("student") or {}).get("fingerprint")},
    }
    skipped: Counter = Counter()
    if kind in SAMPLE_POLICIES:
        chosen = _select_samples(samples_df, pools, metric, descending, budget, unit, fraction, within, seed,
                                 tokens, skipped, manifest)
    else:
        chosen = _select_datasets(datasets_df, pools, kind, k, metric, descending, budget, unit, tau, seed,
                                  tokens, skipped, manifest)
    if skipped:
        manifest["skipped_samples"] = dict(skipped)
    counts: dict[str, dict[str, int | None]] = {}
    for s in chosen:
        c = counts.setdefault(s.dataset, {"samples": 0, "tokens": 0})
        c["samples"] += 1
        n = tokens.get((s.dataset, str(s.id)))
        c["tokens"] = None if n is None or c["tokens"] is None else c["tokens"] + n
    manifest["counts"] = counts
    manifest["n_selected"] = len(chosen)
    tok = [c["tokens"] for c in counts.values()]
    manifest["n_tokens"] = sum(tok) if tok and all(t is not None for t in tok) else (0 if not tok else None)
    return Selection(chosen, manifest)


def _dataset_scores(datasets_df: pd.DataFrame | None, metric: str, pools: dict[str, CandidateDataset],
                    manifest: dict) -> dict[str, float]:
    if datasets_df is None:
        raise ValueError("dataset policies need the per-dataset scores (datasets table or ScoreReport)")
    if metric not in datasets_df.columns:
        raise ValueError(f"the datasets table has no column {metric!r}; columns: {list(datasets_df.columns)}")
    scores: dict[str, float] = {}
    excluded: dict[str, str] = {}
    for d, v in zip(datasets_df["dataset"], datasets_df[metric]):
        d = str(d)
        if d not in pools:
            excluded[d] = "not in the pool"
        elif v is None or not math.isfinite(float(v)):
            excluded[d] = f"{metric} is NaN"
        else:
            scores[d] = float(v)
    for d in pools:
        if d not in scores and d not in excluded:
            excluded[d] = "not scored"
    manifest["scores"] = {d: float(v) if v is not None and math.isfinite(float(v)) else None
                          for d, v in zip(datasets_df["dataset"], datasets_df[metric])}
    if excluded:
        manifest["excluded_datasets"] = excluded
    if not scores:
        raise ValueError(f"no dataset in the pool has a finite {metric!r} score ({excluded})")
    return scores


def _select_datasets(datasets_df, pools, kind, k, metric, descending, budget, unit, tau, seed, tokens,
                     skipped, manifest) -> list[Sample]:
    scores = _dataset_scores(datasets_df, metric, pools, manifest)
    ranked = rank_by_score(scores, descending)  # best first; ties keep the table's order
    if kind in ("top1", "topk"):
        top = ranked[: (1 if kind == "top1" else k)]
        if kind == "topk" and k is not None and k > len(ranked):
            manifest["note"] = f"K={k} but only {len(ranked)} datasets are scored"
        weights = {d: 1.0 / len(top) for d in top}
        why = f"{'best' if kind == 'top1' else f'top {len(top)}'} by {metric}"
    elif kind == "proportional":
        if not descending:
            raise ValueError(f"proportional needs a higher-is-better score; {metric!r} is lower-is-better "
                             "(use softmax[:TAU], which handles either direction)")
        weights, why = proportional_weights(scores)
    else:
        signed = {d: v if descending else -v for d, v in scores.items()}
        weights, why = softmax_weights(signed, tau), f"softmax({metric}/{tau:g})"
    if budget is None and kind in ("proportional", "softmax"):
        raise ValueError(f"{kind} needs a budget (samples or tokens to draw in total)")
    manifest["weights"] = {d: float(weights.get(d, 0.0)) for d in ranked}
    manifest["weights_reason"] = why

    orders = {d: _draw_order(pools[d], seed) for d in weights}
    for d, ss in orders.items():  # the dataset's name is the source, whatever the Sample says
        orders[d] = [s if s.dataset == d else _with_dataset(s, d) for s in ss]
    cap = {d: _capacity(pools[d], unit, tokens) for d in weights}
    if budget is None:
        alloc = dict(cap)
    else:
        alloc = water_fill(weights, cap, float(budget))
        if unit == "samples":
            alloc = {d: float(v) for d, v in round_counts(alloc, {d: int(c) for d, c in cap.items()},
                                                          int(budget)).items()}
        if sum(cap[d] for d in weights if weights[d] > 0) < budget:
            manifest["budget_note"] = (f"budget {budget:g} {unit} exceeds what the chosen datasets hold "
                                       f"({sum(cap.values()):g}); took everything")
    manifest["allocation"] = {d: alloc[d] for d in ranked if d in alloc}
    chosen: list[Sample] = []
    for d in ranked:
        if d in alloc and alloc[d] > 0:
            chosen += _take(orders[d], d, alloc[d], unit, tokens, skipped)
    return chosen


def _with_dataset(s: Sample, name: str) -> Sample:
    return Sample(id=s.id, prompt=s.prompt, response=s.response, gold=s.gold, meta=s.meta, dataset=name)


def _select_samples(samples_df, pools, metric, descending, budget, unit, fraction, within, seed, tokens,
                    skipped, manifest) -> list[Sample]:
    if samples_df is None:
        raise ValueError("samples:top-fraction needs the per-sample scores (samples table or ScoreReport)")
    col = _sample_column(metric)
    if col not in samples_df.columns:
        raise ValueError(f"the samples table has no column {col!r} (metric {metric!r}); "
                         f"columns: {list(samples_df.columns)}")
    if fraction is None and budget is None:
        raise ValueError("samples:top-fraction needs a fraction, a budget, or both")
    df = samples_df[["dataset", "sample_id", "sample_hash", col]
                    + ([f"{col}_reason"] if f"{col}_reason" in samples_df else [])]
    df = df[df["dataset"].astype(str).isin(pools)].reset_index(drop=True)
    nan = df[col].isna()
    if nan.any():
        reasons = df.loc[nan, f"{col}_reason"] if f"{col}_reason" in df else pd.Series("NaN", index=df.index[nan])
        manifest["excluded_samples"] = dict(Counter(reasons.fillna("NaN")))
    df = df[~nan].copy()
    if df.empty:
        raise ValueError(f"no sample has a finite {col!r} score")
    # seeded tie-break (the package's seeded order, keyed by dataset and sample hash), then a stable
    # sort on the score
    keys = [f"{d}|{h}" for d, h in zip(df["dataset"].astype(str), df["sample_hash"].astype(str))]
    tie = np.empty(len(df), dtype=np.int64)
    tie[seeded_order(range(len(df)), keys.__getitem__, seed)] = np.arange(len(df))
    df["_tie"] = tie
    df = df.sort_values("_tie")
    sign = -1.0 if descending else 1.0
    df["_key"] = sign * df[col].astype(float)
    df = df.sort_values("_key", kind="stable")
    if within:
        df["_rank"] = df.groupby("dataset").cumcount()
        df["_n"] = df.groupby("dataset")["dataset"].transform("size")
        if fraction is not None:
            df = df[df["_rank"] < np.ceil(fraction * df["_n"] - 1e-9)]
        # interleave datasets by within-dataset percentile, so a budget takes the same share of each
        df["_pct"] = (df["_rank"] + 0.5) / df["_n"]
        df = df.sort_values(["_pct", "_key"], kind="stable")
    elif fraction is not None:
        df = df.iloc[: int(math.ceil(fraction * len(df) - 1e-9))]
    lookup = {(ds.name, str(s.id)): s for ds in pools.values() for s in ds}
    ordered = []
    for d, i in zip(df["dataset"].astype(str), df["sample_id"].astype(str)):
        s = lookup[(d, i)]
        ordered.append(s if s.dataset == d else _with_dataset(s, d))
    if budget is None:
        return ordered
    if unit == "samples":
        if len(ordered) < budget:
            manifest["budget_note"] = f"budget {budget:g} samples exceeds the {len(ordered)} eligible; took all"
        return ordered[: int(budget)]
    out, used = [], 0
    for s in ordered:
        n = tokens.get((s.dataset, str(s.id)))
        if n is None:
            skipped["no token count"] += 1
            continue
        if used + n <= budget:
            out.append(s)
            used += n
    return out
