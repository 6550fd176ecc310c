"""`dmc validate`: E1 (metric vs post-training accuracy), E2 (static selection), E3 (curricula)."""

from __future__ import annotations

import shlex
import sys

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from transformers.utils import logging as hf_logging

from dmc.cli.app import app
from dmc.cli.options import (CACHE, DEVICE, FIELDS, POOL, STUDENT, USER_ERRORS, command, error_text, fail, field_map,
                             require)
from dmc.cli.score import print_plan
from dmc.report import write_report
from dmc.settings import setting
from dmc.stats import BackendSettings
from dmc.validation import ValidateConfig, validate
from dmc.validation.correlation import fmt_rho


def print_headline(console: Console, result) -> None:
    """E1's correlations (best predictor first), E2's selectors and E3's strategies, as tables."""
    if result.e1:
        t = Table(title="E1: Spearman ρ of each metric with post-training accuracy (best predictor first)")
        for col in ("metric", "direction", "ρ [95% CI]", "signed ρ", "n"):
            t.add_column(col)
        for r in result.e1["headline"]:
            signed = r["signed"]
            t.add_row(r["metric"], r["direction"], fmt_rho(r["rho"], r["lo"], r["hi"]),
                      "n/a" if signed != signed else f"{signed:+.2f}", str(r["n"]))
        console.print(t)
    if result.e2:
        t = Table(title="E2: accuracy when each metric chooses the data")
        for col in ("selector", "chosen", "accuracy"):
            t.add_column(col)
        for s in result.e2["selectors"]:
            acc = s.get("accuracy")
            t.add_row(s["metric"], ", ".join(s.get("chosen") or []) or str(s.get("error")),
                      "n/a" if acc is None or acc != acc else f"{100 * acc:.1f}%")
        console.print(t)
    if result.e3:
        t = Table(title=f"E3: curricula, {result.e3.get('steps')} steps each")
        for col in ("strategy", "final accuracy"):
            t.add_column(col)
        for name, st in result.e3["strategies"].items():
            acc = st.get("final_accuracy")
            t.add_row(name, "n/a" if acc is None or acc != acc else f"{100 * acc:.1f}%")
        console.print(t)


@dataclass(frozen=True)
class ValidateCommand:
    """`dmc validate`: which pool, student and eval set, where the run goes, and its settings."""

    pool: tuple[str, ...] = POOL.field()
    student: str | None = STUDENT.field()
    eval: str | None = setting(None, "Eval set (questions with gold answers). Required.", result=False,
                               path="in")
    fields: tuple[str, ...] = FIELDS.field()
    out: str | None = setting(None, "Run directory: e1.json, e2.json, e3.json, scores/, pilots/ (the cache). "
                              "Required.", result=False, path="out_dir")
    cache: str | None = CACHE.field()
    device: str = DEVICE.field()
    report: bool = setting(True, "Also write OUT/report (HTML + Markdown).", result=False)
    progress: bool = setting(True, "Live display of the pilots.", result=False)
    validate: ValidateConfig = setting(help="The validation's settings.", default_factory=ValidateConfig)
    execution: BackendSettings = setting(help="Where the statistics and the pilots run (here or on Ray).",
                                         result=False, default_factory=BackendSettings)


def run_validate(c: ValidateCommand) -> None:
    require(c.pool, "candidate datasets (POOL... or `pool:` in --config)")
    require(c.student, "--student")
    require(c.eval, "--eval")
    require(c.out, "--out")
    console = Console(stderr=True)
    hf_logging.disable_progress_bar()  # transformers' per-file bars would scroll through the pilot display
    command_line = "dmc " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        result = validate(c.student, list(c.pool), c.eval, c.out, c.validate, device=c.device, cache_dir=c.cache,
                          fields=field_map(c.fields), progress=c.progress, console=console, command=command_line,
                          on_plan=print_plan(console) if c.progress else None, backend=c.execution)
    except USER_ERRORS as e:
        fail(error_text(e))
    print_headline(Console(), result)
    console.print(f"results in {c.out} ({result.seconds:.0f}s)", soft_wrap=True)
    if c.report:
        paths = write_report(c.out)
        console.print(f"report: {paths.html} and {paths.markdown}", soft_wrap=True)


command(app, "validate", ValidateCommand, run_validate, help="""Validate the metrics on cheap pilots: E1 correlations,
E2 static selection, E3 curricula.

Finished pilots are cached under OUT/pilots and skipped on a rerun (a killed run resumes).

Example:

    dmc validate lab/listops/pool --student lab-small --eval lab/listops/eval.jsonl --out val --seeds 0,1

or, with every setting in a file: dmc validate --config experiments/chainsum/validate.yaml
""")
