"""`dmc report`: HTML (self-contained) and Markdown report of `dmc validate` run directories."""

from __future__ import annotations

from pathlib import Path

import typer

from dmc.cli.app import app
from dmc.report import write_report
from dmc.report.compare import write_comparison


@app.command("report")
def report_cmd(
    run_dirs: list[Path] = typer.Argument(..., help="The --out directory of `dmc validate` (or `dmc demo`'s run/); several to compare them."),
    out: Path | None = typer.Option(None, "--out", help="Where the report goes (default: RUN_DIR/report; required with several runs)."),
    title: str | None = typer.Option(None, "--title", help="Report title."),
) -> None:
    """Write report.html (figures embedded) and report.md (figures beside it in report_files/).

    With several run directories: one report per run under OUT/<run name>/ and OUT/compare.md with
    every metric's Spearman ρ, E2 and E3 side by side.
    """
    if len(run_dirs) > 1 and out is None:
        raise typer.BadParameter("--out is required when comparing several runs", param_hint="--out")
    names = [d.resolve().name for d in run_dirs]
    if len(set(names)) != len(names):
        raise typer.BadParameter(f"run directories must have distinct names to be reported side by side: {names}")
    try:
        for d, name in zip(run_dirs, names):
            dest = out if len(run_dirs) == 1 else out / name
            paths = write_report(d, dest, title=title)
            typer.echo(f"wrote {paths.html}")
            typer.echo(f"wrote {paths.markdown} ({len(paths.images)} figures in {paths.markdown.parent / 'report_files'})")
        if len(run_dirs) > 1:
            typer.echo(f"wrote {write_comparison(run_dirs, out, title)}")
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
