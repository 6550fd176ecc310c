"""`dmc data check`: validate candidate datasets and eval sets before spending compute on them."""

from __future__ import annotations

from dataclasses import dataclass

import typer
from rich.console import Console
from rich.table import Table

from dmc.cli.app import app
from dmc.cli.options import FIELDS, command, fail, field_map, require
from dmc.settings import setting
from dmc.data import DataError, load_eval_set, load_pool

data_app = typer.Typer(help="Inspect and validate candidate datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data", help="Inspect and validate candidate datasets and eval sets.")


@dataclass(frozen=True)
class CheckCommand:
    """`dmc data check`: which files, and what to do with bad rows."""

    paths: tuple[str, ...] = setting((), "Dataset files (.jsonl/.json/.parquet) or directories; each file is one "
                                     "candidate dataset.", result=False, positional=True, path="in")
    eval: str | None = setting(None, "An eval set to validate too.", result=False, path="in")
    fields: tuple[str, ...] = FIELDS.field()
    on_error: str = setting("fail", "fail stops at the first bad row; skip drops bad rows and writes them to "
                            "--rejects-dir.", result=False, choices=("fail", "skip"))
    rejects_dir: str | None = setting(None, "Where skipped rows go (one <dataset>.rejects.jsonl each).",
                                      result=False, path="out_dir")


def run_check(c: CheckCommand) -> None:
    """Load datasets with the same rules every command uses, and report rows, rejects and gold coverage."""
    require(c.paths, "the dataset files (PATHS...)")
    console = Console()
    try:
        fields = field_map(c.fields)
        pool = load_pool(list(c.paths), fields=fields, on_error=c.on_error, rejects_dir=c.rejects_dir)  # type: ignore[arg-type]
        items = load_eval_set(c.eval, fields=fields) if c.eval else None
    except (DataError, FileNotFoundError, ValueError) as e:
        fail(str(e))
    table = Table(title="Candidate datasets")
    for col in ("dataset", "samples", "rejected", "with gold", "questions", "mean response chars"):
        table.add_column(col, justify="right" if col != "dataset" else "left")
    for ds in pool:
        n = len(ds)
        table.add_row(ds.name, str(n), str(ds.n_rejected), str(sum(s.gold is not None for s in ds)),
                      str(len({s.question_hash for s in ds})), f"{sum(len(s.response) for s in ds) / n:.0f}")
    console.print(table)
    if items is not None:
        console.print(f"eval set {c.eval}: {len(items)} questions")


command(data_app, "check", CheckCommand, run_check, help="""Load datasets with the same rules every command uses,
and report rows, rejects and gold coverage.

Example:

    dmc data check data/*.jsonl --eval data/eval.jsonl --on-error skip --rejects-dir rejects
""")
