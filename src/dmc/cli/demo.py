"""`dmc demo`: the lab end to end (build → score → E1 → E3 → report) in minutes on 2 CPU cores."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from dmc.cli.app import app
from dmc.demo import fmt_value, run_demo
from dmc.lab import TASK_FAMILIES
from dmc.validation.correlation import fmt_rho


SHORT = {"dmc": "DMC", "rsr": "RSR", "ifd": "IFD", "mean_logprob": "logp", "length": "len",
         "teacher_accuracy": "teach", "student_fail_rate": "fail", "random": "rand"}


def _quiet_hub_bars() -> None:
    """transformers' per-file load/save bars would scroll through the live pilot display."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("dmc-out/demo"), "--out", help="Output directory: lab/, run/ (results and pilot cache), report/."),
    fast: bool = typer.Option(False, "--fast", help="Smaller lab and budgets (about half the time)."),
    family: str = typer.Option("listops", "--family", help="Lab task family (listops, arith)."),
    student: str = typer.Option("lab-small", "--student", help="Student (a lab student name, or any student spec)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Pilot processes (default: min(2, cores))."),
    seed: int = typer.Option(0, "--seed", help="Seed of the lab, the subsamples and the pilots."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Live display of the pilots."),
) -> None:
    """Build the lab, score its pool with a lab student, run E1 and E3 at a reduced scale, write the
    report and print the headline table. Rerunning reuses every finished step."""
    if family not in TASK_FAMILIES:
        raise typer.BadParameter(f"unknown family {family!r}; known: {', '.join(TASK_FAMILIES)}", param_hint="--family")
    err = Console(stderr=True)
    _quiet_hub_bars()
    command = "dmc " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        res = run_demo(out, fast=fast, family=family, student=student, workers=workers, seed=seed, progress=progress,
                       console=err, command=command)
    except (FileNotFoundError, ValueError, KeyError) as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None

    # Short headers and compact numbers; the legend below names each metric. The console is made as
    # wide as the table needs, so a narrow terminal wraps lines instead of cutting cells.
    headers, legend = [], []
    for c in res.table.columns:
        head = "acc" if c == "accuracy" else SHORT.get(c, c)
        headers.append(head)
        if c not in ("dataset", "accuracy") and head != c:
            legend.append(f"{head} = {c}")
    rows = [[("n/a" if v != v else f"{100 * v:.1f}%") if c == "accuracy" else fmt_value(v)
             for c, v in zip(res.table.columns, row)] for row in res.table.itertuples(index=False)]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    console = Console(width=max(Console().width, sum(widths) + 3 * len(widths) + 4))
    t = Table(title=f"{student} on the {family} pool: metrics on the initial student, accuracy after a pilot",
              box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), title_justify="left")
    for i, h in enumerate(headers):
        t.add_column(h, justify="left" if i == 0 else "right", no_wrap=True, min_width=widths[i])
    for r in rows:
        t.add_row(*r)
    console.print(t)
    console.print("  " + "; ".join([*legend, "acc = post-training accuracy"]), highlight=False)
    c = Table(title="Spearman ρ with post-training accuracy (best predictor first; signed: + = predicts well)")
    for col in ("metric", "direction", "ρ [95% CI]", "signed ρ"):
        c.add_column(col)

    reasons = []
    for r in res.correlations.itertuples(index=False):
        c.add_row(r.metric, r.direction, fmt_rho(r.rho, r.lo, r.hi), "n/a" if r.signed != r.signed else f"{r.signed:+.2f}")
        if isinstance(r.reason, str) and r.reason:
            reasons.append(f"{r.metric}: {r.reason}")
    console.print(c)
    for line in reasons:
        console.print(f"  n/a — {line}", highlight=False)
    e3 = res.validation.e3
    if e3:
        s = Table(title=f"E3: curricula, {e3.get('steps')} steps each")
        s.add_column("strategy")
        s.add_column("final accuracy", justify="right")
        for name, st in e3["strategies"].items():
            a = st.get("final_accuracy")
            s.add_row(name, "n/a" if a is None or a != a else f"{100 * a:.1f}%")
        console.print(s)
    console.print(f"report: {res.report_html}  (Markdown: {res.report_md})")
    console.print(f"elapsed: {res.seconds:.0f}s ({', '.join(f'{k} {v:.0f}s' for k, v in res.timings.items())})")
