"""The validation protocols of DESIGN.md §6 on one student, pool and eval set.

- E1: one pilot distillation per candidate dataset (same budget: steps, batch, samples), per
  seed; Spearman / Kendall / Pearson between each metric on the initial student and the
  post-training accuracy, with bootstrap CIs.
- E2: for each metric, the data it selects (`select` policy, same budget) is trained on;
  final accuracy per selector. With the default policy ``top1`` the selection is the E1 pilot
  set of the chosen dataset, so E2 reuses E1's pilots.
- E3: ``uniform`` vs ``static-dmc`` vs ``dynamic-dmc`` on the whole pool, equal total steps,
  with accuracy curves, DMC over training and the mixture timeline.

All pilots go through one cached process pool (dmc.validation.pilots): a rerun skips what
finished, and E1/E2/E3 pilots run side by side.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from transformers.utils import logging as hf_logging

from dmc import __version__, environment
from dmc.curriculum import CurriculumSettings, parse_strategy
from dmc.curriculum.strategies import curriculum_key
from dmc.curriculum.strategies import STRATEGY_REVISIONS
from dmc.data import FieldMap
from dmc.data.schema import CandidateDataset, EvalItem, Sample
from dmc.evaluation import evaluate
from dmc.io import atomic_write_json, content_hash, read_json, write_jsonl
from dmc.metrics import METRICS
from dmc.scoring import ScoringSettings, default_cache_dir, load_inputs, load_targets, score, subsample
from dmc.selection import select
from dmc.settings import CI, N_BOOT, check, result_fields, setting, settings_key, to_dict
from dmc.stats import BackendSettings
from dmc.stats.cost import CostPlan, pilot_plan
from dmc.students import Student, load_student
from dmc.training import TrainConfig
from dmc.validation import files
from dmc.validation.pilots import Pilot, available_cores, default_workers, run_pilots
from dmc.validation.runners import sft_pilot, strategy_pilot
from dmc.validation.summaries import e1_document, e1_tables, e2_document, e3_document, write_e1, write_json

EXPERIMENTS = ("e1", "e2", "e3")
E3_STRATEGIES = ("uniform", "static-dmc", "dynamic-dmc")
INITIAL_FORMAT = "1"  # bump when the cached initial accuracy's content changes


def pilot_train() -> TrainConfig:
    """The pilots' training budget. Chosen on the lab with lab-small (docs/RESULTS.md): a few
    hundred steps is what it takes for the candidate datasets to separate; about 30 CPU-seconds per
    pilot. float32 keeps pilots comparable across machines (bf16 "auto" depends on the CPU)."""
    return TrainConfig(steps=240, batch_size=16, learning_rate=3e-3, lr_scheduler="constant", max_length=512,
                       eval_max_new_tokens=128, eval_batch_size=32, save_model=False, logging_steps=20, bf16=False)


def pilot_scoring() -> ScoringSettings:
    """The metrics are computed on the same number of samples per dataset as the pilots train on."""
    return ScoringSettings(max_samples=192)


@dataclass(frozen=True)
class ValidateConfig:
    """Settings of a validation run (DESIGN.md §6): the experiments, the pilots' budget, how the
    metrics are scored, and the curricula of E3."""

    experiments: tuple[str, ...] = setting(EXPERIMENTS, "Experiments to run, comma-separated: e1, e2, e3.",
                                           choices=None)
    seeds: tuple[int, ...] = setting((0,), "Pilot seeds, comma-separated (E1/E2/E3 each run once per seed; the "
                                     "correlations use the mean accuracy over seeds).")
    pilot_samples: int | None = setting(192, "Samples per dataset every pilot draws from (a seeded subsample; "
                                        "the equal budget).", min=1)
    n_boot: int = N_BOOT.field()
    ci: float = CI.field()
    e2_policy: str = setting("top1", "E2 selection policy (top1, topk:K, softmax[:TAU], proportional, "
                             "samples:top-fraction[:F]).")
    e2_budget: int | None = setting(None, "E2: samples selected (default: --pilot-samples).", min=1)
    e2_metrics: tuple[str, ...] | None = setting(None, "E2 selectors, comma-separated (default: every metric).")
    e3_strategies: tuple[str, ...] = setting(E3_STRATEGIES, "Strategies compared in E3 (uniform, static-dmc, "
                                             "dynamic-dmc, static-dmc-mix, static:<metric>, schedule:A,B@0.5 ...); "
                                             "';'-separated when one holds a comma.")
    e3_steps: int | None = setting(None, "Steps of each E3 run (default: the pilots' --steps).", min=1)
    e3_eval_every: int | None = setting(None, "Steps between accuracy measurements in E3 (default: steps / 4).",
                                        min=1)
    initial_eval: bool = setting(True, "Measure the untouched student's accuracy.")
    workers: int | None = setting(None, "Pilot processes (default: min(2, cores)).", result=False, min=1)
    threads: int | None = setting(None, "torch threads per pilot process (default: cores / workers).",
                                  result=False, min=1)
    train: TrainConfig = setting(help="Every pilot's training budget.", default_factory=pilot_train)
    scoring: ScoringSettings = setting(help="How the metrics are scored on the untouched student.",
                                       default_factory=pilot_scoring)
    curriculum: CurriculumSettings = setting(help="The curricula of E3.", default_factory=CurriculumSettings)

    def __post_init__(self) -> None:
        check(self)
        bad = [e for e in self.experiments if e not in EXPERIMENTS]
        if bad:
            raise ValueError(f"unknown experiments {bad}; choose from {EXPERIMENTS}")
        for s in self.e3_strategies:
            parse_strategy(s)  # raises on an unknown strategy
        if not self.seeds:
            raise ValueError("at least one seed is needed")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


@dataclass
class ValidationResult:
    out_dir: Path
    e1: dict[str, Any] | None = None
    e2: dict[str, Any] | None = None
    e3: dict[str, Any] | None = None
    scores: Any = None  # the initial student's ScoreReport
    initial_accuracy: float | None = None
    seconds: float = 0.0


def data_hash(samples: Sequence[Sample]) -> str:
    """Content hash of a training set as a set of samples (order-free: pilots shuffle anyway)."""
    return content_hash(sorted(s.hash for s in samples))


def _canonical(samples: Sequence[Sample]) -> list[Sample]:
    return sorted(samples, key=lambda s: s.hash)


def _write_samples(path: Path, samples: Sequence[Sample]) -> Path:
    """Write a pilot's training set as JSONL (content-addressed: an existing file holds exactly
    these samples). Ids are prefixed with the dataset name when several datasets are mixed, so
    they stay unique (a sample's content hash does not include its id)."""
    if not path.is_file():
        mixed = len({s.dataset for s in samples}) > 1
        write_jsonl(path, ({**s.to_record(), "id": f"{s.dataset}/{s.id}" if mixed else s.id} for s in samples))
    return path


def _write_eval(path: Path, items: Sequence[EvalItem]) -> Path:
    if not path.is_file():
        write_jsonl(path, ({"id": it.id, "messages": [dict(m) for m in it.prompt], "gold": it.gold,
                            "meta": it.meta} for it in items))
    return path


def _student_spec(student: Any, out: Path) -> tuple[Any, str]:
    """(loaded Student, spec a worker can load): a name/path as given, or an in-memory student
    saved once under OUT/data/student-<fingerprint>."""
    if isinstance(student, Student):
        d = out / files.DATA_DIR / f"student-{student.fingerprint}"
        if not (d / "config.json").is_file():
            hf_logging.disable_progress_bar()
            tmp = d.with_name(d.name + ".tmp")
            if tmp.exists():
                shutil.rmtree(tmp)  # left by a killed run
            student.model.save_pretrained(tmp)
            student.tokenizer.save_pretrained(tmp)
            tmp.rename(d)
        return student, str(d.resolve())
    spec = str(student)
    p = Path(spec)
    if p.exists():
        spec = str(p.resolve())
    return load_student(spec), spec


def eval_settings(cfg: ValidateConfig) -> dict[str, Any]:
    """What decides an accuracy besides the student and the questions: the generation budget and
    the verifier."""
    return {"max_new_tokens": cfg.train.eval_max_new_tokens, "verifier": cfg.scoring.metric.verifier}


def _initial_accuracy(student: Any, evals: list[EvalItem], cfg: ValidateConfig, out: Path, eval_hash: str,
                      console: Console) -> float | None:
    key = settings_key("initial-accuracy", INITIAL_FORMAT, student=student.fingerprint, eval=eval_hash,
                       **eval_settings(cfg))
    path = out / files.DATA_DIR / f"initial-{key}.json"
    if path.is_file():
        v = read_json(path).get("accuracy")
        return None if v is None else float(v)
    t0 = time.perf_counter()
    res = evaluate(student, evals, max_new_tokens=cfg.train.eval_max_new_tokens, batch_size=cfg.train.eval_batch_size,
                   verifier=cfg.scoring.metric.verifier)
    atomic_write_json(path, res.summary())
    console.print(f"initial student: accuracy {_pct(res.accuracy)} on {res.n} eval questions "
                  f"({time.perf_counter() - t0:.0f}s)")
    return None if math.isnan(res.accuracy) else res.accuracy


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _metric_info(report) -> dict[str, dict[str, Any]]:
    return {k: {"direction": v.get("direction"), "version": v.get("version")} for k, v in report.meta["metrics"].items()}


def validate(
    student: Any,
    pool: Any,
    eval_set: Any,
    out_dir: str | Path,
    config: ValidateConfig | None = None,
    *,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    fields: FieldMap | None = None,
    progress: bool = True,
    console: Console | None = None,
    command: str | None = None,
    on_plan: Callable[[CostPlan], None] | None = None,
    backend: BackendSettings | None = None,
) -> ValidationResult:
    """Run the chosen experiments and write their results under `out_dir` (see dmc.validation.files).

    student: a spec for dmc.students.load_student (name, HF directory, .gguf) or a Student.
    pool: candidate dataset files/directories or CandidateDataset objects. eval_set: a file or
    EvalItems. device: where pilots train. cache_dir: the statistics cache (default: see
    dmc.scoring.default_cache_dir). fields: the column names of the files (dmc.data.FieldMap).
    Finished pilots are cached in OUT/pilots and never rerun. on_plan: called before the work with
    what it will compute (scoring and pilots) and a measured estimate of its time (dmc.stats.cost).
    backend: where the statistics and the pilots run (dmc.stats.BackendSettings; default: here,
    the pilots in `workers` processes).

    Pilots run in spawned worker processes when workers > 1: a script that calls this must keep
    its top-level code under ``if __name__ == "__main__":`` (the spawn start method re-imports it).
    """
    cfg = config or ValidateConfig()
    # every metric, selection and curriculum scores at the budget the pilots are evaluated at
    cfg = dataclasses.replace(cfg, scoring=cfg.scoring.with_budget(cfg.train.eval_max_new_tokens))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    console = console or Console(stderr=True)
    t_start = time.perf_counter()
    datasets = load_inputs(pool, fields)
    evals, eval_source = load_targets(eval_set, fields)
    stud, spec = _student_spec(student, out)
    fp = stud.fingerprint
    eval_hash = content_hash(sorted(content_hash({"prompt": list(e.prompt), "gold": e.gold}) for e in evals))
    eval_path = _write_eval(out / files.DATA_DIR / f"eval-{eval_hash}.jsonl", evals)
    workers = cfg.workers or default_workers()
    stats_cache = str(Path(cache_dir or default_cache_dir()).resolve())
    scoring = cfg.scoring

    manifest: dict[str, Any] = {
        "dmc_version": __version__, "command": command or " ".join(sys.argv),
        "student": {"name": stud.name, "spec": spec, "fingerprint": fp},
        "pool": {"datasets": [d.name for d in datasets], "sizes": {d.name: len(d) for d in datasets},
                 "sources": {d.name: str(d.source) for d in datasets}},
        "eval": {"source": eval_source, "n": len(evals), "hash": eval_hash},
        "config": cfg.to_dict(), "train": cfg.train.to_dict(), "cores": available_cores(), "workers": workers,
        "device": device, "environment": environment(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    atomic_write_json(out / files.MANIFEST, manifest)

    # 1. the metrics on the initial student
    t0 = time.perf_counter()
    console.print(f"scoring {len(datasets)} candidate datasets with {stud.name} ...")
    with_pilots = None if on_plan is None else \
        (lambda plan: on_plan(dataclasses.replace(plan, pilots=_pilot_plan(cfg, stud, datasets, len(evals), workers))))
    report = score(datasets, stud, eval_set=evals, settings=scoring, cache_dir=stats_cache,
                   out_dir=out / files.SCORES_DIR, progress=progress, on_plan=with_pilots,
                   backend=backend)
    metrics = _metric_info(report)
    manifest["timings"] = {"score_seconds": round(time.perf_counter() - t0, 1)}

    initial = _initial_accuracy(stud, evals, cfg, out, eval_hash, console) if cfg.initial_eval else None

    # 2. the pilot training sets: the same number of samples from every dataset
    pilot_sets = {d.name: _canonical(subsample(d, cfg.pilot_samples, scoring.seed).samples) for d in datasets}
    data_paths: dict[str, str] = {}
    data_hashes: dict[str, str] = {}
    for name, samples in pilot_sets.items():
        h = data_hash(samples)
        data_hashes[name] = h
        data_paths[name] = str(_write_samples(out / files.DATA_DIR / f"{_safe(name)}-{h}.jsonl", samples).resolve())

    verifier = scoring.metric.verifier
    base_identity = {"student": fp, "eval": eval_hash, "verifier": verifier}
    base_payload = {"student": spec, "eval": str(eval_path.resolve()), "device": device, "verifier": verifier}

    def sft(label: str, name: str, h: str, path: str, seed: int, info: dict[str, Any]) -> Pilot:
        train = dataclasses.replace(cfg.train, seed=seed)
        return Pilot(label, {"kind": "sft", **base_identity, "train": result_fields(train), "data": h},
                     {**base_payload, "train": train.to_dict(), "data": path, "name": name}, info)

    pilots: list[Pilot] = []
    e1_pilots: list[Pilot] = []
    if "e1" in cfg.experiments:
        for name in pilot_sets:
            for s in cfg.seeds:
                e1_pilots.append(sft(f"E1 {name} s{s}", name, data_hashes[name], data_paths[name], s,
                                     {"experiment": "e1", "dataset": name, "seed": s}))
        pilots += e1_pilots

    e2_selectors: list[dict[str, Any]] = []
    e2_pilots: dict[str, list[Pilot]] = {}
    if "e2" in cfg.experiments:
        e2_selectors = _e2_selections(report, datasets, pilot_sets, data_paths, cfg, metrics, out)
        for sel in e2_selectors:
            m = sel["metric"]
            if sel.get("error"):
                e2_pilots[m] = []
                continue
            e2_pilots[m] = [sft(f"E2 {m} → {sel['label']} s{s}", f"e2-{m}", sel["hash"], sel["path"], s,
                                {"experiment": "e2", "dataset": sel["label"], "seed": s, "selector": m})
                            for s in cfg.seeds]
            pilots += e2_pilots[m]

    e3_pilots: dict[str, list[Pilot]] = {}
    e3_steps = int(cfg.e3_steps or cfg.train.steps)
    if "e3" in cfg.experiments:
        e3_pilots = _e3_pilots(cfg, base_identity, base_payload, data_paths, data_hashes, e3_steps, stats_cache)
        pilots = [p for ps in e3_pilots.values() for p in ps] + pilots  # the longest runs start first

    # 3. run every pilot (cached ones are skipped)
    t0 = time.perf_counter()
    results = run_pilots(pilots, _runner_for, out / files.PILOTS_DIR, workers=workers, threads=cfg.threads,
                         progress=progress, console=console, title="validation pilots",
                         backend=backend) if pilots else []
    by_key = {p.key: r for p, r in zip(pilots, results)}
    manifest["timings"]["pilots_seconds"] = round(time.perf_counter() - t0, 1)

    result = ValidationResult(out, scores=report, initial_accuracy=initial)
    info = {"student": manifest["student"], "train": cfg.train.to_dict(), "seeds": list(cfg.seeds), "ci": cfg.ci,
            "n_boot": cfg.n_boot, "initial_accuracy": initial, "pilot_samples": cfg.pilot_samples,
            "eval": manifest["eval"]}
    e1_ds = None
    if e1_pilots:
        res = [{**by_key[p.key], "dataset": p.info["dataset"], "seed": p.info["seed"]} for p in e1_pilots]
        pdf, e1_ds, corr, per_seed = e1_tables(res, report.datasets, metrics, n_boot=cfg.n_boot, ci=cfg.ci, seed=scoring.seed)
        result.e1 = e1_document(pdf, e1_ds, corr, per_seed, metrics, **info)
        write_e1(out, result.e1, pdf, corr)
    if "e2" in cfg.experiments:
        sels = []
        for sel in e2_selectors:
            runs = [{**by_key[p.key], "seed": p.info["seed"]} for p in e2_pilots.get(sel["metric"], [])]
            sels.append({k: v for k, v in sel.items() if k not in ("path", "hash", "label")} | {"per_seed": runs})
        result.e2 = e2_document(sels, e1_ds, policy=cfg.e2_policy,
                                budget=cfg.e2_budget or cfg.pilot_samples, **info)
        write_json(out, files.E2_JSON, result.e2)
    if e3_pilots:
        runs = {name: [{**by_key[p.key], "seed": p.info["seed"]} for p in ps] for name, ps in e3_pilots.items()}
        result.e3 = e3_document(runs, steps=e3_steps, eval_every=_e3_eval_every(cfg, e3_steps),
                                curriculum=cfg.curriculum.to_dict(), **info)
        write_json(out, files.E3_JSON, result.e3)

    result.seconds = round(time.perf_counter() - t_start, 1)
    manifest["timings"]["total_seconds"] = result.seconds
    manifest["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    atomic_write_json(out / files.MANIFEST, manifest)
    return result


def _runner_for(payload: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Dispatch a pilot payload to its runner (module-level, so spawn workers can import it)."""
    return strategy_pilot(payload, run_dir) if "strategy" in payload else sft_pilot(payload, run_dir)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _e2_selections(report, datasets: list[CandidateDataset], pilot_sets: dict[str, list[Sample]],
                   data_paths: dict[str, str], cfg: ValidateConfig, metrics: dict[str, dict[str, Any]],
                   out: Path) -> list[dict[str, Any]]:
    """For each selector metric: the training set it selects (path + hash), or the error."""
    chosen_metrics = list(cfg.e2_metrics) if cfg.e2_metrics else list(metrics)
    budget = cfg.e2_budget or cfg.pilot_samples
    sels = []
    for m in chosen_metrics:
        entry: dict[str, Any] = {"metric": m, "direction": (metrics.get(m) or {}).get("direction")}
        if m not in metrics:
            sels.append({**entry, "error": f"metric {m!r} was not computed", "chosen": None, "label": m})
            continue
        try:
            sel = select(report, datasets, policy=cfg.e2_policy, budget=budget, metric=m, seed=cfg.scoring.seed)
        except (ValueError, KeyError) as e:
            sels.append({**entry, "error": f"{type(e).__name__}: {e}", "chosen": None, "label": m})
            continue
        chosen = list(dict.fromkeys(s.dataset for s in sel.samples))
        if not sel.samples:
            sels.append({**entry, "error": "the selection is empty", "chosen": [], "label": m})
            continue
        if cfg.e2_policy == "top1" and len(chosen) == 1:
            samples = pilot_sets[chosen[0]]  # exactly E1's pilot set for that dataset: E2 reuses its pilot
            path = Path(data_paths[chosen[0]])
        else:
            samples = _canonical(sel.samples)
            path = _write_samples(out / files.DATA_DIR / f"e2-{_safe(m)}-{data_hash(samples)}.jsonl", samples)
        h = data_hash(samples)
        counts = {d: sum(1 for s in samples if s.dataset == d) for d in chosen}
        sels.append({**entry, "chosen": chosen, "counts": counts, "n_samples": len(samples),
                     "label": chosen[0] if len(chosen) == 1 else f"{len(chosen)} datasets",
                     "path": str(path.resolve()), "hash": h, "error": None})
    return sels


def _pilot_plan(cfg: ValidateConfig, student: Any, datasets: list[CandidateDataset], n_eval: int, workers: int):
    """The pilots the experiments will run (E2: at most one per selector and seed) and their work."""
    seeds = len(cfg.seeds)
    n_sft = seeds * ((len(datasets) if "e1" in cfg.experiments else 0)
                     + (len(cfg.e2_metrics or cfg.scoring.metrics or METRICS) if "e2" in cfg.experiments else 0))
    n_e3 = seeds * len(cfg.e3_strategies) if "e3" in cfg.experiments else 0
    e3_steps = int(cfg.e3_steps or cfg.train.steps)
    t = cfg.train
    return pilot_plan(student, [s for d in datasets for s in d.samples[:32]], n=n_sft + n_e3,
                      steps=n_sft * t.steps + n_e3 * e3_steps,
                      evals=n_sft + n_e3 * (e3_steps // _e3_eval_every(cfg, e3_steps) + 1) + int(cfg.initial_eval),
                      batch_size=t.batch_size,
                      max_length=t.max_length, eval_questions=n_eval, eval_max_new_tokens=t.eval_max_new_tokens,
                      eval_batch_size=t.eval_batch_size, workers=workers,
                      threads=cfg.threads or max(1, available_cores() // workers))


def _e3_eval_every(cfg: ValidateConfig, steps: int) -> int:
    return int(cfg.e3_eval_every or max(1, steps // 4))


def _e3_pilots(cfg: ValidateConfig, base_identity: dict[str, Any], base_payload: dict[str, Any],
               data_paths: dict[str, str], data_hashes: dict[str, str], steps: int,
               stats_cache: str) -> dict[str, list[Pilot]]:
    """One pilot per E3 strategy and seed. The static strategies score the same samples with the
    same settings as the initial scores, so they read them from the statistics cache."""
    out: dict[str, list[Pilot]] = {}
    for strategy in cfg.e3_strategies:
        revision = {"revision": STRATEGY_REVISIONS[strategy]} if strategy in STRATEGY_REVISIONS else {}
        out[strategy] = []
        for s in cfg.seeds:
            train = dataclasses.replace(cfg.train, steps=steps, eval_every=_e3_eval_every(cfg, steps), seed=s)
            out[strategy].append(Pilot(
                f"E3 {strategy} s{s}",
                {"kind": "strategy", **base_identity, "train": result_fields(train), "strategy": strategy,
                 "pool": data_hashes, "curriculum": curriculum_key(strategy, cfg.curriculum),
                 "scoring": result_fields(cfg.scoring), **revision},
                {**base_payload, "train": train.to_dict(), "strategy": strategy, "pool": data_paths,
                 "curriculum": cfg.curriculum.to_dict(), "scoring": to_dict(cfg.scoring),
                 "cache_dir": stats_cache},
                {"experiment": "e3", "strategy": strategy, "seed": s}))
    return out
