"""Offline sweep of DMC settings and versions against E1 post-training accuracy.

Reads a run directory made by experiments/chainsum/run.sh (or any `dmc validate` run whose
statistics cache is known): the pool, the eval set, the cached token statistics and attempts
(no forward pass is run: the student is loaded only for its fingerprint) and the per-dataset
accuracies of E1. For every combination of settings it recomputes the metric with
dmc.metrics.score_tables and correlates it with accuracy (Spearman, Kendall, bootstrap CI).

Usage:
  python experiments/chainsum/sweep.py --run runs/chainsum --out runs/chainsum/sweep
  python experiments/chainsum/sweep.py --pool P --eval E --cache C --e1 E1.json --student S --out O
Writes OUT/sweep.csv (one row per metric x settings), OUT/baselines.csv and OUT/components.csv.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

# Settings swept per DMC version (sigma = inf turns v1's difficulty match off: R = 1).
GRIDS = {
    "dmc": {
        "epsilon": [0.0, 0.1, 0.3, 0.5, 1.0],
        "sigma": [0.05, 0.1, 0.15, 0.25, math.inf],
        "content": ["numbers", "words", "all"],
        "top_k": [1, 5],
    },
    "dmc_v2": {
        "epsilon": [0.0, 0.1, 0.3, 0.5, 1.0],
        "sigma_logit": [0.5, 1.0, 1.5, 2.0, 3.0],
        "match_side": ["both", "easier"],
        "content": ["numbers", "words", "all"],
        "top_k": [1, 5],
    },
}


class CachedGrader:
    """dmc.grading behind the Grader interface, memoized: quality does not depend on the swept settings."""

    def __init__(self, verifier: str = "auto"):
        from dmc.metrics import DmcGrader

        self.inner = DmcGrader(verifier)
        self.memo: dict[tuple[str, str], object] = {}

    def grade_many(self, texts, golds):
        todo = [(t, g) for t, g in zip(texts, golds) if (t, g) not in self.memo]
        if todo:
            for key, gr in zip(todo, self.inner.grade_many([t for t, _ in todo], [g for _, g in todo])):
                self.memo[key] = gr
        return [self.memo[(t, g)] for t, g in zip(texts, golds)]

    def extract(self, text):
        return self.inner.extract(text)


def load_tables(pool_dir: str, eval_path: str, cache_dir: str, student: str, max_samples: int,
                attempts_max_new_tokens: int, seed: int = 0, max_length: int = 1024):
    """Pool, target question hashes and the cached tokens/attempts tables.

    Reads the cache only (no forward pass): samples without cached token statistics, and questions
    without cached attempts, are left out of the tables, so the metrics give them NaN with a reason
    (a question without attempts has no c_i; C_D is then the mean over the attempted ones).
    """
    from dmc.data import load_eval_set, load_pool
    from dmc.scoring import subsample
    from dmc.stats import AttemptSettings, StatsCache, TokenStatsSettings, question_hash
    from dmc.students import load_student

    pool = [subsample(d, max_samples, seed) for d in load_pool(pool_dir)]
    evals = load_eval_set(eval_path)
    fp = load_student(student).fingerprint
    cache = StatsCache(Path(cache_dir))
    tok_settings = TokenStatsSettings(max_length=max_length, with_ifd=True)
    att_settings = AttemptSettings(max_new_tokens=attempts_max_new_tokens, seed=seed)
    tokens = cache.load("tokens", fp, tok_settings.settings_hash)[0].to_pandas()
    attempts = cache.load("attempts", fp, att_settings.settings_hash)[0].to_pandas()
    hashes = {s.hash for d in pool for s in d}
    n_tok = len(hashes & set(tokens["sample_hash"]))
    targets = [question_hash(e) for e in evals]
    n_att = len(set(targets) & set(attempts["question_hash"]))
    print(f"cache: token statistics for {n_tok}/{len(hashes)} samples; attempts for {n_att}/{len(set(targets))} "
          f"target questions and {attempts['question_hash'].nunique()} questions in all", file=sys.stderr)
    return pool, targets, tokens, attempts


def e1_accuracy(e1_path: str) -> pd.Series:
    """Per-dataset mean post-training accuracy from a `dmc validate` e1.json (NaN where no pilot finished)."""
    doc = json.loads(Path(e1_path).read_text())
    return pd.Series({d["dataset"]: (np.nan if d.get("accuracy") is None else float(d["accuracy"]))
                      for d in doc["datasets"]}, dtype=float)


def pilot_accuracy(pilots_dirs: list[str]) -> pd.Series:
    """Per-dataset mean accuracy of the finished E1 pilots under `dmc validate` OUT/pilots dirs
    (for runs still in progress, or one pool split over several runs with identical settings:
    unfinished pilots are left out; a pilot found twice under the same key counts once)."""
    accs: dict[str, list[float]] = {}
    seen: set[str] = set()
    paths = sorted(p for d in pilots_dirs for p in Path(d).glob("*/pilot.json"))
    for p in paths:
        if p.parent.name in seen:
            continue
        info = json.loads(p.read_text())
        m = p.parent / "train" / "metrics.json"
        if info.get("info", {}).get("experiment") != "e1" or not m.is_file():
            continue
        acc = json.loads(m.read_text()).get("final_eval", {}).get("accuracy")
        if acc is not None:
            seen.add(p.parent.name)
            accs.setdefault(info["info"]["dataset"], []).append(float(acc))
    return pd.Series({k: float(np.mean(v)) for k, v in accs.items()}, dtype=float)


def correlations(values: pd.Series, acc: pd.Series, n_boot: int = 1000) -> dict:
    from dmc.validation.correlation import correlate

    common = acc.index.intersection(values.index)
    x, y = values.reindex(common).to_numpy(float), acc.reindex(common).to_numpy(float)
    out = {}
    for method in ("spearman", "kendall"):
        c = correlate(x, y, method, n_boot=n_boot)
        out[method], out[f"{method}_lo"], out[f"{method}_hi"] = c.value, c.lo, c.hi
    out["n"] = int(np.isfinite(x).sum())
    return out


def atomic_csv(df: pd.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sweep(pool, targets, tokens, attempts, acc: pd.Series, grids: dict[str, dict],
          subsets: dict[str, list[str]], n_boot: int) -> pd.DataFrame:
    """One row per (metric, settings, dataset subset) with Spearman/Kendall and CIs.

    One ScoringContext per (content, top_k) — alignment depends only on those — and the metric
    recomputed on it for every other setting: the same numbers as score_tables, much faster.
    """
    from dmc.metrics import METRICS, MetricSettings, ScoringContext

    grader = CachedGrader()
    rows = []
    for m, grid in grids.items():
        metric = METRICS[m]
        outer = {k: grid.get(k, [getattr(MetricSettings(), k)]) for k in ("content", "top_k")}
        inner_keys = [k for k in grid if k not in outer]
        for content, top_k in itertools.product(outer["content"], outer["top_k"]):
            ctx = ScoringContext(pool, tokens, attempts, MetricSettings(content=content, top_k=top_k, n_boot=0),
                                 targets, grader)
            for combo in itertools.product(*(grid[k] for k in inner_keys)):
                kw = dict(zip(inner_keys, combo))
                ctx.settings = MetricSettings(content=content, top_k=top_k, n_boot=0, **kw)
                values = metric.compute(ctx).dataset_values
                for subset, names in subsets.items():
                    r = {"metric": m, "version": metric.version, "subset": subset, "content": content,
                         "top_k": top_k, **kw}
                    r.update(correlations(values.reindex(names), acc.reindex(names), n_boot))
                    rows.append(r)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="run dir of experiments/chainsum/run.sh (data/, cache/, validate/)")
    ap.add_argument("--pool"), ap.add_argument("--eval"), ap.add_argument("--cache"), ap.add_argument("--e1")
    ap.add_argument("--acc", help="JSON {dataset: accuracy} instead of an e1.json (pilots run elsewhere)")
    ap.add_argument("--pilots", action="append", default=[],
                    help="a `dmc validate` OUT/pilots dir (repeatable): use its finished E1 pilots")
    ap.add_argument("--student", default="smollm2-135m")
    ap.add_argument("--max-samples", type=int, default=128)
    ap.add_argument("--attempts-max-new-tokens", type=int, default=128)
    ap.add_argument("--max-length", type=int, default=1024, help="the token-statistics max_length of the cache")
    ap.add_argument("--metrics", default=None, help="comma-separated DMC versions to sweep (default: all in GRIDS)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--grid", default=None, help="JSON object {metric: {setting: [values]}} overriding GRIDS "
                    "(budget \"gen\": the --attempts-max-new-tokens)")
    ap.add_argument("--subset", action="append", default=[],
                    help="NAME=ds1,ds2,... extra dataset subsets to correlate on (repeatable)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    run = Path(a.run) if a.run else None
    pool_dir = a.pool or (str(run / "data" / "pool") if run else None)
    eval_path = a.eval or (str(run / "data" / "eval.jsonl") if run else None)
    cache = a.cache or (str(run / "cache") if run else None)
    e1 = a.e1 or (str(run / "validate" / "e1.json") if run else None)
    if not (a.acc or a.pilots or e1) or not (pool_dir and eval_path and cache):
        raise SystemExit("give --run, or --pool, --eval, --cache and one of --e1 / --acc")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    from dmc.metrics import METRICS, MetricSettings, score_tables

    pool, targets, tokens, attempts = load_tables(pool_dir, eval_path, cache, a.student, a.max_samples,
                                                  a.attempts_max_new_tokens, max_length=a.max_length)
    if a.acc:
        acc = pd.Series(json.loads(Path(a.acc).read_text()), dtype=float)
    elif a.pilots:
        acc = pilot_accuracy(a.pilots)
    else:
        acc = e1_accuracy(e1)
    print(f"accuracy for {acc.notna().sum()} datasets: {acc.round(3).to_dict()}", file=sys.stderr)
    subsets = {"all": list(acc.index)}
    for spec in a.subset:
        name, _, names = spec.partition("=")
        subsets[name] = [n for n in names.split(",") if n]
    grids = json.loads(a.grid) if a.grid else GRIDS
    grids = {m: {k: [math.inf if k == "sigma" and v in ("inf", None) else v for v in vs] for k, vs in g.items()}
             for m, g in grids.items() if a.metrics is None or m in a.metrics.split(",")}
    # budget "gen": the attempts' generation budget of this testbed (the same rule across testbeds)
    for g in grids.values():
        if "budget" in g:
            g["budget"] = [a.attempts_max_new_tokens if v == "gen" else v for v in g["budget"]]
    unknown = set(grids) - set(METRICS)
    if unknown:
        raise SystemExit(f"unknown metrics in the grid: {sorted(unknown)}; registered: {list(METRICS)}")

    # baselines and default-settings components, once
    base = score_tables(pool, tokens, attempts, settings=MetricSettings(), target_questions=targets,
                        grader=CachedGrader())
    ds = base.datasets.set_index("dataset")
    ds.insert(0, "accuracy", acc.reindex(ds.index))
    comp = ds.drop(columns=[c for c in ("nan_reasons", "reasons") if c in ds.columns]).reset_index()
    atomic_csv(comp.sort_values("accuracy", ascending=False), out / "components.csv")
    brows = []
    for m, info in base.meta["metrics"].items():
        for subset, names in subsets.items():
            r = {"metric": m, "version": info["version"], "direction": info["direction"], "subset": subset}
            r.update(correlations(ds[m].reindex(names), acc.reindex(names), a.n_boot))
            brows.append(r)
    atomic_csv(pd.DataFrame(brows), out / "baselines.csv")

    res = sweep(pool, targets, tokens, attempts, acc, grids, subsets, a.n_boot)
    if "budget" in res:
        res["budget"] = res["budget"].map(lambda v: "gen" if v == a.attempts_max_new_tokens else v)
    atomic_csv(res, out / "sweep.csv")
    pd.set_option("display.width", 200)
    print(comp[["dataset", "accuracy"] + [c for c in ("dmc", "dmc_v2", "Q", "A", "C_D", "C_T", "R", "R2")
                                          if c in comp]]
          .to_string(index=False))
    print(pd.DataFrame(brows).to_string(index=False))
    print(res[res.subset == "all"].sort_values("spearman", ascending=False).head(20).to_string(index=False))


if __name__ == "__main__":
    main()
