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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from dmc import __version__
from dmc.data.schema import CandidateDataset, EvalItem, Sample, content_hash
from dmc.validation import files
from dmc.io import atomic_write_json, read_json
from dmc.validation.pilots import Pilot, available_cores, default_workers, run_pilots
from dmc.validation.runners import sft_pilot, strategy_pilot
from dmc.validation.summaries import e1_document, e1_tables, e2_document, e3_document, write_e1, write_json

EXPERIMENTS = ("e1", "e2", "e3")
E3_STRATEGIES = ("uniform", "static-dmc", "dynamic-dmc")

# Pilot budget defaults, chosen on the lab with lab-small (docs/RESULTS.md): a few hundred steps is
# what it takes for the candidate datasets to separate; about 30 CPU-seconds per pilot. float32 keeps
# pilots comparable across machines (bf16 "auto" depends on the CPU's instructions).
DEFAULT_TRAIN: dict[str, Any] = {
    "steps": 240, "batch_size": 16, "learning_rate": 3e-3, "lr_scheduler": "constant", "max_length": 512,
    "eval_max_new_tokens": 128, "eval_batch_size": 32, "save_model": False, "logging_steps": 20, "bf16": False,
}


@dataclass
class ValidateConfig:
    """Settings of a validation run.

    train: TrainConfig fields for every pilot (output_dir and seed are set per pilot); merged over
        DEFAULT_TRAIN. pilot_samples: per candidate dataset, a seeded subsample of this many
        samples is what every pilot trains on (equal budget); None = the whole dataset.
    seeds: one pilot per dataset per seed; the correlations use the mean accuracy over seeds.
    metrics: metric names to compute and correlate (None = all registered).
    max_samples: per dataset, samples scored for the metrics (None = all).
    n_boot / ci: bootstrap resamples and level of the correlation CIs.
    e2_policy: dmc.selection policy each metric selects with; e2_budget: samples selected (None =
        pilot_samples). e2_metrics: selectors (None = every metric).
    e3_strategies: dmc.training strategies compared in E3 (uniform, static-dmc, dynamic-dmc,
        static-dmc-mix, static:<metric> ...). e3_steps: total steps of each E3 run (None =
        train["steps"]); e3_eval_every: steps between accuracy measurements (None = e3_steps // 4);
        rescore_every / probe_size / policy / target_size: the dynamic curriculum.
    attempts_max_new_tokens: generation budget of the student's attempts (capability), for the
        initial scores and every re-score (None = dmc.stats' default).
    workers / threads: pilot processes and torch threads per process (default min(2, cores) and
        cores // workers).
    """

    experiments: tuple[str, ...] = EXPERIMENTS
    train: dict[str, Any] = field(default_factory=dict)
    pilot_samples: int | None = 192
    seeds: tuple[int, ...] = (0,)
    metrics: tuple[str, ...] | None = None
    max_samples: int | None = 192
    n_boot: int = 1000
    ci: float = 0.95
    e2_policy: str = "top1"
    e2_budget: int | None = None
    e2_metrics: tuple[str, ...] | None = None
    e3_strategies: tuple[str, ...] = E3_STRATEGIES
    e3_steps: int | None = None
    e3_eval_every: int | None = None
    rescore_every: int = 60
    probe_size: int | None = 16
    policy: str = "argmax"
    target_size: int | None = 32
    attempts_max_new_tokens: int | None = None
    initial_eval: bool = True
    device: str = "cpu"
    workers: int | None = None
    threads: int | None = None
    stats_cache: str | None = None
    verifier: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [e for e in self.experiments if e not in EXPERIMENTS]
        if bad:
            raise ValueError(f"unknown experiments {bad}; choose from {EXPERIMENTS}")
        from dmc.training import parse_strategy

        for s in self.e3_strategies:
            parse_strategy(s)  # raises on an unknown strategy
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        if self.pilot_samples is not None and self.pilot_samples < 1:
            raise ValueError(f"pilot_samples must be >= 1 or None, got {self.pilot_samples}")
        from dmc.training import TrainConfig

        TrainConfig.from_dict(self.train_dict())  # fail early on a bad field, before any pilot runs

    def train_dict(self) -> dict[str, Any]:
        d = {**DEFAULT_TRAIN, **self.train}
        for k in ("output_dir", "seed"):
            d.pop(k, None)
        return d

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
    from dmc.data import write_jsonl

    if not path.is_file():
        mixed = len({s.dataset for s in samples}) > 1
        write_jsonl(path, ({**s.to_record(), "id": f"{s.dataset}/{s.id}" if mixed else s.id} for s in samples))
    return path


def _write_eval(path: Path, items: Sequence[EvalItem]) -> Path:
    from dmc.data import write_jsonl

    if not path.is_file():
        write_jsonl(path, ({"id": it.id, "messages": [dict(m) for m in it.prompt], "gold": it.gold,
                            "meta": it.meta} for it in items))
    return path


def _student_spec(student: Any, out: Path) -> tuple[Any, str]:
    """(loaded Student, spec a worker can load): a name/path as given, or an in-memory student
    saved once under OUT/data/student-<fingerprint>."""
    from dmc.students import Student, load_student

    if isinstance(student, Student):
        d = out / files.DATA_DIR / f"student-{student.fingerprint}"
        if not (d / "config.json").is_file():
            from transformers.utils import logging as hf_logging

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


def _load_inputs(pool: Any, eval_set: Any) -> tuple[list[CandidateDataset], list[EvalItem], str]:
    from dmc.data import load_eval_set, load_pool

    if isinstance(pool, (str, Path)) or (isinstance(pool, Sequence) and pool and isinstance(pool[0], (str, Path))):
        datasets = load_pool(pool)
    else:
        datasets = [_named(d) for d in pool]
    if not datasets:
        raise ValueError("the candidate pool is empty")
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ValueError(f"candidate datasets must have distinct names, got {names}")
    if isinstance(eval_set, (str, Path)):
        evals, source = load_eval_set(eval_set), str(eval_set)
    else:
        evals, source = list(eval_set), "<in memory>"
    return datasets, evals, source


def _named(ds: CandidateDataset) -> CandidateDataset:
    """Samples carry their dataset's name (selections report where each sample came from)."""
    if all(s.dataset == ds.name for s in ds):
        return ds
    return CandidateDataset(ds.name, [dataclasses.replace(s, dataset=ds.name) for s in ds], source=ds.source,
                            n_rejected=ds.n_rejected)


def _initial_accuracy(student: Any, evals: list[EvalItem], cfg: ValidateConfig, out: Path, eval_hash: str,
                      console: Console) -> float | None:
    from dmc.evaluation import evaluate

    path = out / files.DATA_DIR / f"initial-{student.fingerprint}-{eval_hash}.json"
    if path.is_file():
        v = read_json(path).get("accuracy")
        return None if v is None else float(v)
    train = cfg.train_dict()
    t0 = time.perf_counter()
    res = evaluate(student, evals, max_new_tokens=train["eval_max_new_tokens"], batch_size=train["eval_batch_size"],
                   verifier=cfg.verifier)
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
    progress: bool = True,
    console: Console | None = None,
    command: str | None = None,
) -> ValidationResult:
    """Run the chosen experiments and write their results under `out_dir` (see dmc.validation.files).

    student: a spec for dmc.students.load_student (name, HF directory, .gguf) or a Student.
    pool: candidate dataset files/directories or CandidateDataset objects. eval_set: a file or
    EvalItems. Finished pilots are cached in OUT/pilots and never rerun.

    Pilots run in spawned worker processes when workers > 1: a script that calls this must keep
    its top-level code under ``if __name__ == "__main__":`` (the spawn start method re-imports it).
    """
    from dmc.scoring import default_cache_dir, score, subsample

    cfg = config or ValidateConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    console = console or Console(stderr=True)
    t_start = time.perf_counter()
    datasets, evals, eval_source = _load_inputs(pool, eval_set)
    stud, spec = _student_spec(student, out)
    fp = stud.fingerprint
    eval_hash = content_hash(sorted(content_hash({"prompt": list(e.prompt), "gold": e.gold}) for e in evals))
    eval_path = _write_eval(out / files.DATA_DIR / f"eval-{eval_hash}.jsonl", evals)
    train = cfg.train_dict()
    workers = cfg.workers or default_workers()
    stats_cache = str(Path(cfg.stats_cache or default_cache_dir()).resolve())

    manifest: dict[str, Any] = {
        "dmc_version": __version__, "command": command or " ".join(sys.argv),
        "student": {"name": stud.name, "spec": spec, "fingerprint": fp},
        "pool": {"datasets": [d.name for d in datasets], "sizes": {d.name: len(d) for d in datasets},
                 "sources": {d.name: str(d.source) for d in datasets}},
        "eval": {"source": eval_source, "n": len(evals), "hash": eval_hash},
        "config": cfg.to_dict(), "train": train, "cores": available_cores(), "workers": workers,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    atomic_write_json(out / files.MANIFEST, manifest)

    # 1. the metrics on the initial student
    t0 = time.perf_counter()
    attempt_settings = None
    if cfg.attempts_max_new_tokens:
        from dmc.stats import AttemptSettings

        attempt_settings = AttemptSettings(max_new_tokens=cfg.attempts_max_new_tokens, verifier=cfg.verifier)
    console.print(f"scoring {len(datasets)} candidate datasets with {stud.name} ...")
    report = score(datasets, stud, eval_set=evals, metrics=list(cfg.metrics) if cfg.metrics else None,
                   max_samples=cfg.max_samples, cache_dir=stats_cache, out_dir=out / files.SCORES_DIR,
                   seed=cfg.seed, attempt_settings=attempt_settings, progress=progress)
    metrics = _metric_info(report)
    manifest["timings"] = {"score_seconds": round(time.perf_counter() - t0, 1)}

    initial = _initial_accuracy(stud, evals, cfg, out, eval_hash, console) if cfg.initial_eval else None

    # 2. the pilot training sets: the same number of samples from every dataset
    pilot_sets = {d.name: _canonical(subsample(d, cfg.pilot_samples, cfg.seed).samples) for d in datasets}
    data_paths: dict[str, str] = {}
    data_hashes: dict[str, str] = {}
    for name, samples in pilot_sets.items():
        h = data_hash(samples)
        data_hashes[name] = h
        data_paths[name] = str(_write_samples(out / files.DATA_DIR / f"{_safe(name)}-{h}.jsonl", samples).resolve())

    base_identity = {"student": fp, "eval": eval_hash, "train": _result_fields(train), "verifier": cfg.verifier}
    base_payload = {"student": spec, "eval": str(eval_path.resolve()), "train": train, "device": cfg.device,
                    "verifier": cfg.verifier}

    def sft(label: str, name: str, h: str, path: str, seed: int, info: dict[str, Any]) -> Pilot:
        return Pilot(label, {"kind": "sft", **base_identity, "data": h, "seed": seed},
                     {**base_payload, "data": path, "name": name, "seed": seed}, info)

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
    e3_steps = int(cfg.e3_steps or train["steps"])
    if "e3" in cfg.experiments:
        e3_pilots = _e3_pilots(cfg, base_identity, base_payload, data_paths, data_hashes, e3_steps, stats_cache)
        pilots = [p for ps in e3_pilots.values() for p in ps] + pilots  # the longest runs start first

    # 3. run every pilot (cached ones are skipped)
    t0 = time.perf_counter()
    results = run_pilots(pilots, _runner_for, out / files.PILOTS_DIR, workers=workers, threads=cfg.threads,
                         progress=progress, console=console, title="validation pilots") if pilots else []
    by_key = {p.key: r for p, r in zip(pilots, results)}
    manifest["timings"]["pilots_seconds"] = round(time.perf_counter() - t0, 1)

    result = ValidationResult(out, scores=report, initial_accuracy=initial)
    info = {"student": manifest["student"], "train": train, "seeds": list(cfg.seeds), "ci": cfg.ci,
            "n_boot": cfg.n_boot, "initial_accuracy": initial, "pilot_samples": cfg.pilot_samples,
            "eval": manifest["eval"]}
    e1_ds = None
    if e1_pilots:
        res = [{**by_key[p.key], "dataset": p.info["dataset"], "seed": p.info["seed"]} for p in e1_pilots]
        pdf, e1_ds, corr, per_seed = e1_tables(res, report.datasets, metrics, n_boot=cfg.n_boot, ci=cfg.ci, seed=cfg.seed)
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
                                curriculum=_curriculum_settings(cfg, stats_cache), **info)
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
    from dmc.selection import select

    chosen_metrics = list(cfg.e2_metrics) if cfg.e2_metrics else list(metrics)
    budget = cfg.e2_budget or cfg.pilot_samples
    sels = []
    for m in chosen_metrics:
        entry: dict[str, Any] = {"metric": m, "direction": (metrics.get(m) or {}).get("direction")}
        if m not in metrics:
            sels.append({**entry, "error": f"metric {m!r} was not computed", "chosen": None, "label": m})
            continue
        try:
            sel = select(report, datasets, policy=cfg.e2_policy, budget=budget, metric=m, seed=cfg.seed)
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


def _e3_eval_every(cfg: ValidateConfig, steps: int) -> int:
    return int(cfg.e3_eval_every or max(1, steps // 4))


# Training fields that do not change a pilot's result: left out of its cache key, so changing
# them does not rerun finished pilots.
_NOT_IN_KEY = ("logging_steps",)


def _result_fields(train: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in train.items() if k not in _NOT_IN_KEY}
    if fields.get("lora_r") is not None:
        # LoRA adapters were once initialised from the process's unseeded RNG (runs did not
        # reproduce); pilots cached then are keyed apart from the seeded ones.
        fields["lora_init"] = "seeded"
    return fields


def _curriculum_settings(cfg: ValidateConfig, stats_cache: str) -> dict[str, Any]:
    """dmc.training.CurriculumSettings fields for E3: the static strategies score the same samples
    with the same settings as the initial scores, so they read them from the statistics cache."""
    from dmc.stats import AttemptSettings

    return {"rescore_every": cfg.rescore_every, "probe_size": cfg.probe_size, "policy": cfg.policy,
            "score_max_samples": cfg.max_samples, "target_size": cfg.target_size,
            "attempt_max_new_tokens": cfg.attempts_max_new_tokens or AttemptSettings().max_new_tokens,
            "cache_dir": stats_cache}


def _e3_pilots(cfg: ValidateConfig, base_identity: dict[str, Any], base_payload: dict[str, Any],
               data_paths: dict[str, str], data_hashes: dict[str, str], steps: int,
               stats_cache: str) -> dict[str, list[Pilot]]:
    train = {**base_payload["train"], "steps": steps, "eval_every": _e3_eval_every(cfg, steps)}
    curriculum = _curriculum_settings(cfg, stats_cache)
    # the cache location does not change results: keep it out of the pilot's identity
    cur_identity = {k: v for k, v in curriculum.items() if k != "cache_dir"}
    out: dict[str, list[Pilot]] = {}
    from dmc.training.strategies import STRATEGY_REVISIONS

    for strategy in cfg.e3_strategies:
        revision = {"revision": STRATEGY_REVISIONS[strategy]} if strategy in STRATEGY_REVISIONS else {}
        out[strategy] = [
            Pilot(f"E3 {strategy} s{s}",
                  {"kind": "strategy", **base_identity, "train": _result_fields(train), "strategy": strategy, "pool": data_hashes,
                   "seed": s, "curriculum": cur_identity, **revision},
                  {**base_payload, "train": train, "strategy": strategy, "pool": data_paths, "seed": s,
                   "curriculum": curriculum},
                  {"experiment": "e3", "strategy": strategy, "seed": s})
            for s in cfg.seeds
        ]
    return out
