"""`dmc score`: DMC and baseline scores of candidate datasets for a student."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape

from dmc.cli.app import app
from dmc.cli.options import (CACHE, DEVICE, DTYPE, FIELDS, POOL, PROGRESS, STUDENT, USER_ERRORS, command, error_text,
                             fail, field_map, require, wide_console)
from dmc.metrics import METRICS, directions_footer
from dmc.scoring import ScoringSettings, score
from dmc.settings import setting
from dmc.stats import BackendSettings
from dmc.stats.cost import CostPlan


@dataclass(frozen=True)
class ScoreCommand:
    """`dmc score`: what to score, with which student, where the results go, and how."""

    datasets: tuple[str, ...] = POOL.field()
    student: str | None = STUDENT.field()
    eval: str | None = setting(None, "Target questions with gold (C_T); default: the pool's own questions.",
                               result=False, path="in")
    fields: tuple[str, ...] = FIELDS.field()
    out: str = setting("dmc-out/score", "Output directory: samples.parquet, datasets.json, datasets.csv.",
                       result=False, path="out_dir")
    cache: str | None = CACHE.field()
    device: str = DEVICE.field()
    dtype: str = DTYPE.field()
    progress: bool = PROGRESS.field()
    scoring: ScoringSettings = setting(help="How the pool is scored.", default_factory=ScoringSettings)
    execution: BackendSettings = setting(help="Where the statistics are computed (here or on Ray).", result=False,
                                         default_factory=BackendSettings)


def print_plan(console) -> Callable[[CostPlan], None]:
    """Prints what a run will compute and its estimated time, before the work starts (stderr)."""
    def show(plan: CostPlan) -> None:
        for line in plan.lines():
            console.print(escape(line), highlight=False, soft_wrap=True)
    return show


def run_score(c: ScoreCommand) -> None:
    require(c.datasets, "candidate datasets (DATASETS... or `datasets:` in --config)")
    require(c.student, "--student")
    fields = field_map(c.fields)
    console = wide_console()
    err = wide_console(stderr=True)
    try:
        report = score(list(c.datasets), c.student, eval_set=c.eval, settings=c.scoring, cache_dir=c.cache,
                       out_dir=c.out, device=c.device, dtype=c.dtype, progress=c.progress, fields=fields,
                       backend=c.execution, on_plan=print_plan(err) if c.progress else None)
    except USER_ERRORS as e:
        fail(error_text(e))
    console.print(report.table())
    for row in report.datasets.itertuples(index=False):
        if getattr(row, "n_truncated", 0):
            err.print(escape(f"warning: {row.dataset}: {row.n_truncated} of {row.n_samples} traces are longer than the "
                             "scoring max_length and were cut; their alignment is NaN (raise --score-max-length, up "
                             "to the student's context)"), highlight=False, soft_wrap=True)
    for what, unit in (("tokens", "samples"), ("attempts", "questions")):
        r = report.meta["run"].get(what)
        if r:
            label = "token statistics" if what == "tokens" else "student attempts"
            err.print(escape(f"{label}: {r['computed']} {unit} computed, {r['reused']} reused from cache "
                             f"({report.meta['stats']['cache']}) in {r['seconds']:.1f}s"), highlight=False, soft_wrap=True)
    err.print(escape(f"wrote samples.parquet, datasets.json, datasets.csv to {c.out}"), highlight=False, soft_wrap=True)


command(app, "score", ScoreCommand, run_score, help=f"""Score candidate datasets for a student: one row per dataset,
sorted by DMC, with its CI and components.

Example:

    dmc score lab/listops/pool --student lab-small --eval lab/listops/eval.jsonl --out scores

Metrics (--metrics): {', '.join(METRICS)}.

\b
{directions_footer(list(METRICS))}
""")
