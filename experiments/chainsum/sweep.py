"""Offline sweep of DMC settings and versions against E1 post-training accuracy.

Reads one `dmc validate` run (no forward pass: the statistics come from its cache) and, for every
combination of metric settings in the grid (experiments/grid.json by default: the run's
MetricSettings with the swept fields replaced), recomputes the metric as dmc.metrics.score_tables
does and correlates it with the E1 accuracies (Spearman, Kendall, bootstrap CI). Settings that
share the content tokens (selector, K, format share, step numbers) share one ScoringContext,
checked against score_tables (--exact: score_tables for every setting, 50-100x slower).

What the run scored is taken from the run itself, never rebuilt by hand:
- the scoring settings (samples per dataset, token statistics, attempts, metric defaults): the
  ScoringSettings recorded in RUN/scores/datasets.json (meta["scoring"]), else the validate
  config's `validate.scoring`;
- the statistics: dmc.scoring.cached_tables under those settings, from the cache the run used
  (RUN/scores/datasets.json meta["stats"]["cache"], else the config's `cache`);
- the pool (RUN/validate.json, else the config's `pool`), the eval set (the copy in RUN/data/,
  else the config's `eval`), the student's fingerprint (RUN/scores/datasets.json) and the
  accuracies (RUN/e1.json, else the finished E1 pilots under RUN/pilots).

Usage:
  python experiments/chainsum/sweep.py --config experiments/chainsum/validate.yaml --out runs/chainsum/sweep-joint
  python experiments/chainsum/sweep.py --run runs/lab/listops-lab-small --n-boot 200 --out runs/lab/sweep/listops-lab-small
--run is a `dmc validate --out` directory, or a directory holding one as validate/ (the chain-sum
layout). --pool/--eval/--cache/--student/--e1/--acc/--pilots and --max-samples/
--attempt-max-new-tokens/--score-max-length override what the run recorded.

Writes OUT/sweep.csv (one row per metric x settings x subset), OUT/baselines.csv (every metric at
the run's settings) and OUT/components.csv (per dataset: accuracy and every metric/component).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

GRID_FILE = Path(__file__).resolve().parents[1] / "grid.json"
MANIFEST = "validate.json"  # dmc.validation.files
SCORES_JSON = Path("scores") / "datasets.json"


def log(msg: str) -> None:
    print(msg, file=sys.stderr)


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


# -- where the run's inputs are ----------------------------------------------------------------------
@dataclass
class RunInputs:
    """Everything the sweep reads, and where each came from (printed, so a mismatch shows)."""

    run_dir: Path | None
    pool: list[str]
    eval: str
    cache: Path
    fingerprint: str
    scoring: Any  # dmc.scoring.ScoringSettings
    sources: dict[str, str]


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def find_run_dir(path: str | Path) -> Path:
    """A `dmc validate --out` dir, given it or its parent (experiments/chainsum's RUN/validate)."""
    p = Path(path)
    if not (p / MANIFEST).is_file() and (p / "validate" / MANIFEST).is_file():
        return p / "validate"
    return p


def load_command(config: str | None):
    """The `dmc validate` command a config file describes (dmc.cli.validate.ValidateCommand), built
    exactly as `dmc validate --config FILE` builds it; None without a config."""
    if not config:
        return None
    from dmc.cli.validate import ValidateCommand
    from dmc.settings import from_dict, load_config

    return from_dict(ValidateCommand, load_config(config))


def resolve_inputs(a: argparse.Namespace) -> RunInputs:
    from dmc.scoring import ScoringSettings, default_cache_dir
    from dmc.settings import from_dict

    cmd = load_command(a.config)
    run_dir = find_run_dir(a.run) if a.run else (Path(cmd.out) if cmd is not None and cmd.out else None)
    manifest = _read_json(run_dir / MANIFEST) if run_dir else {}
    meta = _read_json(run_dir / SCORES_JSON).get("meta", {}) if run_dir else {}
    src: dict[str, str] = {}

    # the scoring settings: as recorded by the run's scoring, else as the config declares them
    if meta.get("scoring"):
        scoring, src["scoring"] = from_dict(ScoringSettings, meta["scoring"]), f"{run_dir / SCORES_JSON} meta.scoring"
    elif (manifest.get("config") or {}).get("scoring"):
        scoring, src["scoring"] = from_dict(ScoringSettings, manifest["config"]["scoring"]), f"{run_dir / MANIFEST}"
    elif cmd is not None:
        scoring, src["scoring"] = cmd.validate.scoring, f"{a.config} validate.scoring"
    else:
        scoring, src["scoring"] = ScoringSettings(), "dmc.scoring.ScoringSettings() defaults"
    over = []
    if a.max_samples is not None:
        scoring = dataclasses.replace(scoring, max_samples=a.max_samples)
        over.append(f"max_samples={a.max_samples}")
    if a.attempt_max_new_tokens is not None:
        scoring = dataclasses.replace(scoring, attempts=dataclasses.replace(scoring.attempts,
                                                                            max_new_tokens=a.attempt_max_new_tokens))
        over.append(f"attempts.max_new_tokens={a.attempt_max_new_tokens}")
    if a.score_max_length is not None:
        scoring = dataclasses.replace(scoring, tokens=dataclasses.replace(scoring.tokens, max_length=a.score_max_length))
        over.append(f"tokens.max_length={a.score_max_length}")
    if over:
        src["scoring"] += " with " + ", ".join(over)

    # the pool
    sources = (manifest.get("pool") or {}).get("sources") or {}
    if a.pool:
        pool, src["pool"] = list(a.pool), "--pool"
    elif cmd is not None and cmd.pool:
        pool, src["pool"] = list(cmd.pool), f"{a.config} pool"
    elif sources:
        pool, src["pool"] = [sources[n] for n in manifest["pool"].get("datasets", sources)], f"{run_dir / MANIFEST}"
    else:
        raise SystemExit("no pool: give --run (a `dmc validate` run directory), --config or --pool")

    # the eval set (its target questions give C_T): the copy the run trained and scored against
    eval_hash = (manifest.get("eval") or {}).get("hash")
    copy = run_dir / "data" / f"eval-{eval_hash}.jsonl" if run_dir and eval_hash else None
    if a.eval:
        eval_path, src["eval"] = a.eval, "--eval"
    elif copy is not None and copy.is_file():
        eval_path, src["eval"] = str(copy), "the run's copy"
    elif cmd is not None and cmd.eval:
        eval_path, src["eval"] = cmd.eval, f"{a.config} eval"
    elif (manifest.get("eval") or {}).get("source"):
        eval_path, src["eval"] = manifest["eval"]["source"], f"{run_dir / MANIFEST}"
    else:
        raise SystemExit("no eval set: give --run, --config or --eval")

    # the statistics cache the run read and wrote
    recorded = (meta.get("stats") or {}).get("cache")
    if a.cache:
        cache, src["cache"] = Path(a.cache), "--cache"
    elif recorded and Path(recorded).is_dir():
        cache, src["cache"] = Path(recorded), f"{run_dir / SCORES_JSON} meta.stats.cache"
    elif cmd is not None and cmd.cache:
        cache, src["cache"] = Path(cmd.cache), f"{a.config} cache"
    else:
        cache, src["cache"] = default_cache_dir(), "dmc.scoring.default_cache_dir()"
    if not cache.is_dir():
        raise SystemExit(f"statistics cache {cache} (from {src['cache']}) does not exist; give --cache")

    # the student, by fingerprint: no need to load it when the run recorded it
    fp = (meta.get("student") or {}).get("fingerprint") or (manifest.get("student") or {}).get("fingerprint")
    if a.student or not fp:
        spec = a.student or (cmd.student if cmd is not None else None)
        if not spec:
            raise SystemExit("no student fingerprint in the run: give --student")
        from dmc.students import load_student

        fp, src["student"] = load_student(spec).fingerprint, f"{spec} (loaded)"
    else:
        src["student"] = f"fingerprint {fp} recorded by the run"
    return RunInputs(run_dir, pool, eval_path, cache, fp, scoring, src)


# -- accuracies ------------------------------------------------------------------------------------
def e1_accuracy(e1_path: str | Path) -> pd.Series:
    """Per-dataset mean post-training accuracy from a `dmc validate` e1.json (NaN where no pilot finished)."""
    doc = json.loads(Path(e1_path).read_text())
    return pd.Series({d["dataset"]: (np.nan if d.get("accuracy") is None else float(d["accuracy"]))
                      for d in doc["datasets"]}, dtype=float)


def pilot_accuracy(pilots_dirs: list[str | Path]) -> pd.Series:
    """Per-dataset mean accuracy of the finished E1 pilots under `dmc validate` OUT/pilots dirs
    (for runs still in progress, or one pool split over several runs with identical settings:
    unfinished pilots are left out; a pilot found twice under the same key counts once)."""
    accs: dict[str, list[float]] = {}
    seen: set[str] = set()
    paths = sorted(p for d in pilots_dirs for p in Path(d).glob("*/pilot.json"))
    for p in paths:
        if p.parent.name in seen:
            continue
        info = json.loads(p.read_text()).get("info", {})
        res = _read_json(p.parent / "result.json")  # dmc.validation.pilots.RESULT_FILE
        if info.get("experiment") != "e1" or res.get("status") != "done" or res.get("accuracy") is None:
            continue
        seen.add(p.parent.name)
        accs.setdefault(info["dataset"], []).append(float(res["accuracy"]))
    return pd.Series({k: float(np.mean(v)) for k, v in accs.items()}, dtype=float)


def load_accuracy(a: argparse.Namespace, run_dir: Path | None) -> tuple[pd.Series, str]:
    if a.acc:
        return pd.Series(json.loads(Path(a.acc).read_text()), dtype=float), a.acc
    if a.pilots:
        return pilot_accuracy(a.pilots), ", ".join(a.pilots)
    if a.e1:
        return e1_accuracy(a.e1), a.e1
    if run_dir is not None and (run_dir / "e1.json").is_file():
        return e1_accuracy(run_dir / "e1.json"), str(run_dir / "e1.json")
    if run_dir is not None and (run_dir / "pilots").is_dir():
        return pilot_accuracy([run_dir / "pilots"]), f"finished E1 pilots in {run_dir / 'pilots'}"
    raise SystemExit("no E1 accuracies: the run has neither e1.json nor pilots/; give --e1, --acc or --pilots")


# -- correlations ------------------------------------------------------------------------------------
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


def load_grid(spec: str | None, gen_budget: int, only: str | None) -> dict[str, dict[str, list]]:
    """The grid {metric: {setting: [values]}} from a JSON file or JSON text (default: experiments/grid.json).
    sigma "inf" (or null) turns v1's difficulty match off; budget "gen" is the run's attempt budget."""
    if not spec:
        text = GRID_FILE.read_text()
    elif spec.lstrip().startswith("{"):
        text = spec
    else:
        text = Path(spec).read_text()
    grids = json.loads(text)
    grids = {m: {k: [math.inf if k == "sigma" and v in ("inf", None) else v for v in vs] for k, vs in g.items()}
             for m, g in grids.items() if only is None or m in only.split(",")}
    for g in grids.values():
        if "budget" in g:
            g["budget"] = [gen_budget if v == "gen" else v for v in g["budget"]]
    return grids


def exact_values(frame: pd.DataFrame, tokens, attempts, targets, grader, m: str, settings,
                 answers=None) -> pd.Series:
    """Metric ``m`` per dataset under ``settings``: dmc.metrics.score_tables, the one scoring path."""
    from dmc.metrics import score_tables

    rep = score_tables(frame, tokens, attempts, metrics=[m], settings=settings, target_questions=targets,
                       grader=grader, answers=answers)
    return rep.datasets.set_index("dataset")[m].astype(float)


def group_values(frame: pd.DataFrame, tokens, attempts, targets, grader, m: str, group: list,
                 exact: bool, answers=None) -> list[pd.Series]:
    """Metric ``m`` per dataset under each settings object of ``group`` (settings that share the
    content selector, K and format share).

    exact: score_tables for every one (about 0.5 s per setting for 640 samples, 2-5 s for the
    lab's 2112). Otherwise one ScoringContext for the group — its per-sample quantities (quality,
    capability, alignment) depend on the content selector and K, not on the swept weights and
    widths — with each setting computed on it, 50-100x faster; the group's first and last settings
    (they differ in every swept field) are checked against score_tables, and on any difference
    the whole group is recomputed with score_tables.
    """
    from dmc.metrics import METRICS, ScoringContext

    if exact:
        return [exact_values(frame, tokens, attempts, targets, grader, m, s, answers) for s in group]
    ctx = ScoringContext(frame, tokens, attempts, group[0], targets, grader, answers=answers)
    out = []
    for s in group:
        ctx.settings = s
        out.append(pd.Series(METRICS[m].compute(ctx).dataset_values, dtype=float))
    for i in sorted({0, len(group) - 1}):
        ref = exact_values(frame, tokens, attempts, targets, grader, m, group[i], answers)
        got = out[i].reindex(ref.index).to_numpy(float)
        if not np.allclose(got, ref.to_numpy(float), rtol=0.0, atol=1e-12, equal_nan=True):
            log(f"WARNING: {m} under {group[i]} differs from score_tables on a shared context; "
                "recomputing this group with score_tables")
            return [exact_values(frame, tokens, attempts, targets, grader, m, s, answers) for s in group]
    return out


def sweep(frame: pd.DataFrame, tokens, attempts, targets, base, acc: pd.Series, grids: dict[str, dict],
          subsets: dict[str, list[str]], n_boot: int, grader: CachedGrader, exact: bool = False,
          answers=None) -> pd.DataFrame:
    """One row per (metric, settings, dataset subset) with Spearman/Kendall and CIs: the metric
    under ``base`` (the run's MetricSettings) with the swept fields replaced and no per-dataset
    bootstrap (n_boot 0), as score_tables computes it (see :func:`group_values`)."""
    from dmc.metrics import METRICS

    rows = []
    for m, grid in grids.items():
        # the settings a ScoringContext's alignment depends on: one context per combination
        outer_keys = ("content", "top_k", "format_share", "counters")
        outer = {k: grid.get(k, [getattr(base, k)]) for k in outer_keys}
        inner_keys = [k for k in grid if k not in outer]
        for values in itertools.product(*outer.values()):
            ctx_kw = dict(zip(outer_keys, values))
            if ctx_kw["content"] not in ("decisions", "continuations") and (
                    ctx_kw["format_share"] != outer["format_share"][0] or ctx_kw["counters"] != outer["counters"][0]):
                continue  # format_share and counters only change the decisions and continuations selectors
            combos = [dict(zip(inner_keys, c)) for c in itertools.product(*(grid[k] for k in inner_keys))]
            group = [dataclasses.replace(base, **ctx_kw, n_boot=0, **kw) for kw in combos]
            values_of = group_values(frame, tokens, attempts, targets, grader, m, group, exact, answers)
            for kw, values in zip(combos, values_of):
                for subset, names in subsets.items():
                    r = {"metric": m, "version": METRICS[m].version, "subset": subset, **ctx_kw, **kw}
                    r.update(correlations(values.reindex(names), acc.reindex(names), n_boot))
                    rows.append(r)
            log(f"  {m}: {' '.join(f'{k}={v}' for k, v in ctx_kw.items())} done ({len(rows)} rows)")
    return pd.DataFrame(rows)


def answer_table(a: argparse.Namespace, r: RunInputs, samples, eval_items) -> pd.DataFrame:
    """The answers table (dmc.stats.answers) of the pool's and the eval set's questions: read from the
    run's cache, computed there with the student when missing (one short forward pass per question)."""
    from dmc.scoring import compute_tables
    from dmc.stats import StatsCache
    from dmc.students import load_student

    manifest = _read_json(r.run_dir / MANIFEST) if r.run_dir else {}
    cmd = load_command(a.config)
    spec = a.student or (manifest.get("student") or {}).get("spec") or (cmd.student if cmd is not None else None)
    if not spec:
        raise SystemExit("capability=likelihood needs the student: give --student")
    student = load_student(spec)
    if student.fingerprint != r.fingerprint:
        raise SystemExit(f"student {spec} has fingerprint {student.fingerprint}, the run {r.fingerprint}")
    t = compute_tables(student, samples, r.scoring, questions=[*samples, *eval_items], needs={"answers"},
                       cache=StatsCache(r.cache))
    log(f"answers: {int(t.answers['gold_logprob'].notna().sum())}/{len(t.answers)} questions "
        f"({t.run['answers'].get('computed', 0)} computed, {t.run['answers']['seconds']} s)")
    return t.answers


def check_against_run(ds: pd.DataFrame, run_dir: Path | None) -> None:
    """The baselines recomputed here should equal the run's own scores (same tables, same settings)."""
    doc = _read_json(run_dir / SCORES_JSON) if run_dir else {}
    if not doc.get("datasets"):
        return
    run = pd.DataFrame(doc["datasets"]).set_index("dataset")
    diffs = {}
    for m in doc.get("meta", {}).get("metrics", {}):
        if m in ds and m in run:
            a, b = ds[m].reindex(run.index).to_numpy(float), run[m].to_numpy(float)
            both = np.isfinite(a) & np.isfinite(b)
            diffs[m] = (float(np.max(np.abs(a[both] - b[both]))) if both.any() else 0.0,
                        int((np.isfinite(a) != np.isfinite(b)).sum()))
    bad = {m: d for m, d in diffs.items() if d[0] > 1e-9 or d[1]}
    if bad:
        log(f"WARNING: recomputed metrics differ from {run_dir / SCORES_JSON} (max |diff|, NaN mismatches): {bad}")
    else:
        log(f"check: every metric recomputed from the cache equals {run_dir / SCORES_JSON} ({len(diffs)} metrics)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a `dmc validate --out` directory (or its parent, holding it as validate/)")
    ap.add_argument("--config", help="the run's `dmc validate --config` file (its `out` is the run directory)")
    ap.add_argument("--out", required=True, help="where sweep.csv, baselines.csv and components.csv go")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of each correlation's CI")
    ap.add_argument("--grid", default=None, help="JSON file or JSON text {metric: {setting: [values]}} "
                    f"(default: {GRID_FILE.relative_to(GRID_FILE.parents[1])}); budget \"gen\" is the run's "
                    "attempt budget, sigma \"inf\" turns v1's difficulty match off")
    ap.add_argument("--metrics", default=None, help="comma-separated DMC versions of the grid to sweep (default: all)")
    ap.add_argument("--subset", action="append", default=[],
                    help="NAME=ds1,ds2,... extra dataset subsets to correlate on (repeatable)")
    ap.add_argument("--exact", action="store_true", help="score_tables for every setting (50-100x slower; the "
                    "default checks two settings per content selector and K against it)")
    g = ap.add_argument_group("overrides of what the run recorded")
    g.add_argument("--pool", action="append", help="candidate dataset file or directory (repeatable)")
    g.add_argument("--eval", help="eval set (the target questions of C_T)")
    g.add_argument("--cache", help="statistics cache directory")
    g.add_argument("--student", help="student spec (loaded for its fingerprint)")
    g.add_argument("--e1", help="a `dmc validate` e1.json")
    g.add_argument("--acc", help="JSON {dataset: accuracy} instead of an e1.json (pilots run elsewhere)")
    g.add_argument("--pilots", action="append", default=[],
                   help="a `dmc validate` OUT/pilots dir (repeatable): use its finished E1 pilots")
    g.add_argument("--max-samples", type=int, default=None, help="ScoringSettings.max_samples")
    g.add_argument("--attempt-max-new-tokens", "--attempts-max-new-tokens", dest="attempt_max_new_tokens", type=int,
                   default=None, help="ScoringSettings.attempts.max_new_tokens")
    g.add_argument("--score-max-length", "--max-length", dest="score_max_length", type=int, default=None,
                   help="ScoringSettings.tokens.max_length")
    a = ap.parse_args(argv)
    if not (a.run or a.config or (a.pool and a.eval and a.cache)):
        raise SystemExit("give --run or --config (or --pool, --eval, --cache, --student and --e1/--acc/--pilots)")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    from dmc.data import load_eval_set
    from dmc.metrics import METRICS, samples_frame, score_tables
    from dmc.scoring import cached_tables, load_inputs, subsample
    from dmc.settings import to_dict
    from dmc.stats import StatsCache, question_hash

    r = resolve_inputs(a)
    s = r.scoring
    log(f"run: {r.run_dir}")
    for k, v in r.sources.items():
        log(f"  {k}: {v}")
    log(f"  scoring settings: {json.dumps(to_dict(s))}")

    pool = [subsample(d, s.max_samples, s.seed) for d in load_inputs(r.pool)]
    samples = [x for d in pool for x in d]
    eval_items = load_eval_set(r.eval)
    targets = [question_hash(e) for e in eval_items]
    gen = s.attempts.max_new_tokens
    grids = load_grid(a.grid, gen, a.metrics)
    answers = None
    if "answers" in s.needs or any("likelihood" in g.get("capability", []) for g in grids.values()):
        answers = answer_table(a, r, samples, eval_items)
    tables = cached_tables(r.fingerprint, samples, s, StatsCache(r.cache))
    tokens, attempts = tables.tokens, tables.attempts
    n_tok = len({x.hash for x in samples} & set(tokens["sample_hash"])) if len(tokens) else 0
    n_att = len(set(targets) & set(attempts["question_hash"])) if len(attempts) else 0
    log(f"cache {r.cache}: token statistics for {n_tok}/{len({x.hash for x in samples})} samples; attempts for "
        f"{n_att}/{len(set(targets))} target questions and "
        f"{attempts['question_hash'].nunique() if len(attempts) else 0} questions in all")
    if n_tok == 0:
        raise SystemExit("no cached token statistics for this pool under these settings (was the run scored?)")

    acc, acc_src = load_accuracy(a, r.run_dir)
    log(f"accuracy ({acc_src}) for {int(acc.notna().sum())} datasets: {acc.round(3).to_dict()}")
    subsets = {"all": list(acc.index)}
    for spec in a.subset:
        name, _, names = spec.partition("=")
        subsets[name] = [n for n in names.split(",") if n]
    unknown = set(grids) - set(METRICS)
    if unknown:
        raise SystemExit(f"unknown metrics in the grid: {sorted(unknown)}; registered: {list(METRICS)}")

    # every metric at the run's settings (baselines.csv) and its components per dataset (components.csv)
    frame = samples_frame(pool)
    grader = CachedGrader(s.metric.verifier)
    base = score_tables(frame, tokens, attempts, metrics=list(s.metrics) if s.metrics is not None else None,
                        settings=s.metric, target_questions=targets, grader=grader, answers=answers)
    ds = base.datasets.set_index("dataset")
    check_against_run(ds, r.run_dir)
    ds.insert(0, "accuracy", acc.reindex(ds.index))
    comp = ds.drop(columns=[c for c in ("nan_reasons", "reasons") if c in ds.columns]).reset_index()
    atomic_csv(comp.sort_values("accuracy", ascending=False), out / "components.csv")
    brows = []
    for m, info in base.meta["metrics"].items():
        for subset, names in subsets.items():
            row = {"metric": m, "version": info["version"], "direction": info["direction"], "subset": subset}
            row.update(correlations(ds[m].reindex(names), acc.reindex(names), a.n_boot))
            brows.append(row)
    atomic_csv(pd.DataFrame(brows), out / "baselines.csv")

    n_settings = sum(math.prod(len(v) for v in g.values()) for g in grids.values())
    log(f"sweeping {n_settings} settings ...")
    res = sweep(frame, tokens, attempts, targets, s.metric, acc, grids, subsets, a.n_boot, grader, a.exact, answers)
    if "budget" in res:
        res["budget"] = res["budget"].map(lambda v: "gen" if v == gen else v)
    atomic_csv(res, out / "sweep.csv")
    pd.set_option("display.width", 200)
    print(comp[["dataset", "accuracy"] + [c for c in ("dmc", "dmc_v2", "Q", "A", "C_D", "C_T", "R", "R2")
                                          if c in comp]]
          .to_string(index=False))
    print(pd.DataFrame(brows).to_string(index=False))
    if len(res):
        print(res[res.subset == "all"].sort_values("spearman", ascending=False).head(20).to_string(index=False))
    log(f"wrote {out / 'sweep.csv'}, {out / 'baselines.csv'}, {out / 'components.csv'}")


if __name__ == "__main__":
    main()
