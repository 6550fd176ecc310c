"""`dmc demo`: the lab end to end (build → score → E1 → E3 → report) in minutes on 2 CPU cores."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.table import Table

from transformers.utils import logging as hf_logging

from dmc.cli.app import app
from dmc.cli.options import USER_ERRORS, command, error_text, fail
from dmc.settings import SEED, setting
from dmc.demo import fmt_value, run_demo
from dmc.lab import TASK_FAMILIES
from dmc.validation.correlation import fmt_rho


SHORT = {"dmc": "DMC", "rsr": "RSR", "ifd": "IFD", "mean_logprob": "logp", "length": "len",
         "teacher_accuracy": "teach", "student_fail_rate": "fail", "random": "rand"}


@dataclass(frozen=True)
class DemoCommand:
    """`dmc demo`: the lab end to end, at one of two scales."""

    out: str = setting("dmc-out/demo", "Output directory: lab/, run/ (results and pilot cache), report/.",
                       result=False, path="out_dir")
    fast: bool = setting(False, "Smaller lab and budgets (about half the time).")
    family: str = setting("listops", "Lab task family.", choices=tuple(TASK_FAMILIES))
    student: str = setting("lab-small", "Student (a lab student name, or any student spec).", result=False)
    workers: int | None = setting(None, "Pilot processes (default: min(2, cores)).", result=False, min=1)
    seed: int = SEED.field()
    progress: bool = setting(True, "Live display of the pilots.", result=False)


def run_demo_cmd(c: DemoCommand) -> None:
    """Build the lab, score its pool with a lab student, run E1 and E3 at a reduced scale, write the
    report and print the headline table. Rerunning reuses every finished step."""
    err = Console(stderr=True)
    hf_logging.disable_progress_bar()  # transformers' per-file bars would scroll through the pilot display
    command_line = "dmc " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        res = run_demo(c.out, fast=c.fast, family=c.family, student=c.student, workers=c.workers, seed=c.seed,
                       progress=c.progress, console=err, command=command_line)
    except USER_ERRORS as e:
        fail(error_text(e))
    family, student = c.family, c.student

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
    console.print(f"report: {res.report_html}  (Markdown: {res.report_md})", soft_wrap=True)
    console.print(f"elapsed: {res.seconds:.0f}s ({', '.join(f'{k} {v:.0f}s' for k, v in res.timings.items())})")


command(app, "demo", DemoCommand, run_demo_cmd, help="""Build the lab, score its pool with a lab student, run E1 and
E3 at a reduced scale, write the report and print the headline table. Rerunning reuses every finished step.

Example:

    dmc demo --out dmc-out/demo --fast
""")
