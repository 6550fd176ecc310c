"""The demo: build (or reuse) the lab, score its pool with a lab student, run E1 and E3 at a
reduced scale, write the report and return the headline table. Sized for 2 CPU cores."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from dmc.lab import build_lab
from dmc.report import write_report
from dmc.validation.protocol import ValidateConfig, ValidationResult, validate


@dataclass(frozen=True)
class DemoScale:
    """Sizes of one demo run: lab samples per dataset and eval questions, pilot budget, E3 run."""

    n: int
    n_eval: int
    steps: int
    batch_size: int
    e3_steps: int
    e3_eval_every: int
    rescore_every: int
    probe_size: int
    target_size: int
    eval_max_new_tokens: int
    attempts_max_new_tokens: int
    n_boot: int = 1000
    learning_rate: float = 2e-3


# Chosen on the lab with lab-small (docs/RESULTS.md): a pilot of a few hundred steps is what it
# takes for the candidate datasets to separate; "full" fits in about 5 minutes on 2 CPU cores.
SCALES: dict[str, DemoScale] = {
    "full": DemoScale(n=192, n_eval=96, steps=240, batch_size=16, e3_steps=240, e3_eval_every=60, rescore_every=60,
                      probe_size=16, target_size=24, eval_max_new_tokens=96, attempts_max_new_tokens=96,
                      learning_rate=3e-3),
    "fast": DemoScale(n=96, n_eval=64, steps=120, batch_size=16, e3_steps=120, e3_eval_every=40, rescore_every=40,
                      probe_size=12, target_size=16, eval_max_new_tokens=96, attempts_max_new_tokens=96,
                      learning_rate=3e-3),
}


@dataclass
class DemoResult:
    out_dir: Path
    validation: ValidationResult
    table: pd.DataFrame  # one row per dataset: metrics and post-training accuracy
    correlations: pd.DataFrame  # Spearman rows, best predictor first
    report_html: Path
    report_md: Path
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def _lab(out: Path, family: str, n: int, n_eval: int, seed: int, console: Console) -> tuple[Path, Path]:
    """The lab's pool directory and eval file for `family`, built unless an identical build exists."""
    manifest = out / "lab.json"
    fam_dir = out / family
    if manifest.is_file():
        m = json.loads(manifest.read_text(encoding="utf-8"))
        if (m.get("n"), m.get("n_eval"), m.get("seed")) == (n, n_eval, seed) and family in m.get("families", {}):
            console.print(f"lab: reusing {fam_dir}")
            return fam_dir / "pool", fam_dir / "eval.jsonl"
    paths = build_lab(out, family=family, n=n, n_eval=n_eval, seed=seed)[family]
    console.print(f"lab: built {len(paths.pool)} candidate datasets × {n} samples and {n_eval} eval questions "
                  f"({family}) in {fam_dir}")
    return fam_dir / "pool", paths.eval


def demo_config(scale: DemoScale, workers: int | None = None, seed: int = 0) -> ValidateConfig:
    base = ValidateConfig()
    scoring = base.scoring.with_seed(seed)
    return dataclasses.replace(
        base, experiments=("e1", "e3"),
        train=dataclasses.replace(base.train, steps=scale.steps, batch_size=scale.batch_size,
                                  learning_rate=scale.learning_rate, eval_max_new_tokens=scale.eval_max_new_tokens,
                                  max_length=384),
        scoring=dataclasses.replace(scoring, max_samples=scale.n,
                                    attempts=dataclasses.replace(scoring.attempts,
                                                                 max_new_tokens=scale.attempts_max_new_tokens),
                                    metric=dataclasses.replace(scoring.metric, n_boot=scale.n_boot)),
        curriculum=dataclasses.replace(base.curriculum, rescore_every=scale.rescore_every, probe_size=scale.probe_size,
                                       target_size=scale.target_size),
        pilot_samples=scale.n, seeds=(seed,), n_boot=scale.n_boot, e3_steps=scale.e3_steps,
        e3_eval_every=scale.e3_eval_every, workers=workers)


def headline_table(result: ValidationResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per dataset: each metric and post-training accuracy, best accuracy first;
    Spearman ρ per metric, best predictor first)."""
    if not result.e1:
        raise ValueError("the headline table needs E1 results")
    metrics = list(result.e1["metrics"])
    ds = pd.DataFrame(result.e1["datasets"])
    cols = ["dataset"] + [m for m in metrics if m in ds.columns] + ["accuracy"]
    table = ds[cols].sort_values("accuracy", ascending=False, na_position="last").reset_index(drop=True)
    corr = pd.DataFrame(result.e1["headline"])
    return table, corr


def run_demo(
    out: str | Path,
    *,
    fast: bool = False,
    family: str = "listops",
    student: str = "lab-small",
    scale: DemoScale | None = None,
    workers: int | None = None,
    seed: int = 0,
    progress: bool = True,
    console: Console | None = None,
    command: str | None = None,
) -> DemoResult:
    """Lab → scores → E1 (every pool dataset, one seed) → E3 → report, under OUT/{lab,run,report}."""
    console = console or Console(stderr=True)
    out = Path(out)
    t0 = time.perf_counter()
    sc = scale or SCALES["fast" if fast else "full"]
    pool_dir, eval_path = _lab(out / "lab", family, sc.n, sc.n_eval, seed, console)
    timings = {"lab_seconds": round(time.perf_counter() - t0, 1)}
    cfg = demo_config(sc, workers=workers, seed=seed)
    res = validate(student, [str(pool_dir)], str(eval_path), out / "run", cfg, progress=progress, console=console,
                   command=command)
    timings["validate_seconds"] = res.seconds
    t1 = time.perf_counter()
    paths = write_report(out / "run", out / "report", title=f"DMC demo: {student} on the lab's {family} pool")
    timings["report_seconds"] = round(time.perf_counter() - t1, 1)
    table, corr = headline_table(res)
    return DemoResult(out, res, table, corr, paths.html, paths.markdown, round(time.perf_counter() - t0, 1), timings)


def fmt_value(x: Any) -> str:
    """At most 5 characters for values under 1000: 0.16, -1.53, 74.1, 312."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float):
        return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}" if abs(x) < 100 else f"{x:.0f}"
    return str(x)
