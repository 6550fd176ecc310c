"""`dmc data check`: validate candidate datasets and eval sets before spending compute on them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dmc.cli.app import app
from dmc.data import DataError, load_eval_set, load_pool

data_app = typer.Typer(help="Inspect and validate candidate datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data", help="Inspect and validate candidate datasets and eval sets.")


@data_app.command("check")
def check(
    paths: list[Path] = typer.Argument(..., help="Dataset files (.jsonl/.json/.parquet) or directories; each file is one candidate dataset."),
    eval_set: Path | None = typer.Option(None, "--eval", help="An eval set to validate too."),
    on_error: str = typer.Option("fail", help="'fail' stops at the first bad row; 'skip' drops bad rows and writes them to --rejects-dir."),
    rejects_dir: Path | None = typer.Option(None, help="Where skipped rows go (one <dataset>.rejects.jsonl each)."),
) -> None:
    """Load datasets with the same rules every command uses, and report rows, rejects and gold coverage."""
    console = Console()
    try:
        pool = load_pool(paths, on_error=on_error, rejects_dir=rejects_dir)  # type: ignore[arg-type]
        items = load_eval_set(eval_set) if eval_set else None
    except (DataError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    table = Table(title="Candidate datasets")
    for col in ("dataset", "samples", "rejected", "with gold", "questions", "mean response chars"):
        table.add_column(col, justify="right" if col != "dataset" else "left")
    for ds in pool:
        n = len(ds)
        table.add_row(ds.name, str(n), str(ds.n_rejected), str(sum(s.gold is not None for s in ds)),
                      str(len({s.question_hash for s in ds})), f"{sum(len(s.response) for s in ds) / n:.0f}")
    console.print(table)
    if items is not None:
        console.print(f"eval set {eval_set}: {len(items)} questions")
