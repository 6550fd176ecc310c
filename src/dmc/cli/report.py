"""`dmc report`: HTML (self-contained) and Markdown report of `dmc validate` run directories."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from dmc.cli.app import app
from dmc.cli.options import command, fail, require
from dmc.settings import setting
from dmc.report import write_report
from dmc.report.compare import write_comparison


@dataclass(frozen=True)
class ReportCommand:
    """`dmc report`: which validation runs, and where the report goes."""

    run_dirs: tuple[str, ...] = setting((), "The --out directory of `dmc validate` (or `dmc demo`'s run/); several "
                                        "to compare them.", result=False, positional=True, path="in")
    out: str | None = setting(None, "Where the report goes (default: RUN_DIR/report; required with several runs).",
                              result=False, path="out_dir")
    title: str | None = setting(None, "Report title.", result=False)


def run_report(c: ReportCommand) -> None:
    require(c.run_dirs, "the run directories (RUN_DIRS...)")
    runs = [Path(d) for d in c.run_dirs]
    if len(runs) > 1 and c.out is None:
        fail("--out is required when comparing several runs")
    names = [d.resolve().name for d in runs]
    if len(set(names)) != len(names):
        fail(f"run directories must have distinct names to be reported side by side: {names}")
    out = Path(c.out) if c.out is not None else None
    try:
        for d, name in zip(runs, names):
            dest = out if len(runs) == 1 else out / name
            paths = write_report(d, dest, title=c.title)
            typer.echo(f"wrote {paths.html}")
            typer.echo(f"wrote {paths.markdown} ({len(paths.images)} figures in {paths.markdown.parent / 'report_files'})")
        if len(runs) > 1:
            typer.echo(f"wrote {write_comparison(runs, out, c.title)}")
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))


command(app, "report", ReportCommand, run_report, help="""Write report.html (figures embedded) and report.md (figures
beside it in report_files/). With several run directories: one report per run under OUT/<run name>/ and
OUT/compare.md with every metric's Spearman ρ, E2 and E3 side by side.

Example:

    dmc report runs/val --out runs/val/report
""")
