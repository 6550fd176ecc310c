"""`dmc data check`: validate candidate datasets and eval sets before spending compute on them."""

from __future__ import annotations

from dataclasses import dataclass

import typer
from rich.console import Console
from rich.table import Table

from dmc.cli.app import app
from dmc.cli.options import (DEVICE, DTYPE, FIELDS, STUDENT, USER_ERRORS, command, error_text, fail, field_map,
                             require)
from dmc.settings import setting
from dmc.data import DataError, load_eval_set, load_pool
from dmc.stats import TokenStatsSettings
from dmc.stats.cost import truncated_counts
from dmc.stats.tokens import max_length_for
from dmc.students import load_student

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
    student: str | None = setting(None, "Also count, per dataset, the responses this student's scoring would cut "
                                  "at the scoring max_length (a built-in name, a Hugging Face directory or a .gguf).",
                                  result=False)
    device: str = DEVICE.field()
    dtype: str = DTYPE.field()
    tokens: TokenStatsSettings = setting(help="How the student would score the traces (--score-max-length, "
                                         "--score-turns).", default_factory=TokenStatsSettings)


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
    cut: dict[str, int] | None = None
    if c.student:
        try:
            st = load_student(c.student, device=c.device, dtype=c.dtype)
            cut = truncated_counts(st, pool, c.tokens)
        except USER_ERRORS as e:
            fail(error_text(e))
        max_length = max_length_for(st, c.tokens)
    table = Table(title="Candidate datasets")
    cols = ["dataset", "samples", "rejected", "with gold", "questions", "mean response chars"]
    for col in cols + ([f"truncated at {max_length}"] if cut is not None else []):
        table.add_column(col, justify="right" if col != "dataset" else "left")
    for ds in pool:
        n = len(ds)
        table.add_row(ds.name, str(n), str(ds.n_rejected), str(sum(s.gold is not None for s in ds)),
                      str(len({s.question_hash for s in ds})), f"{sum(len(s.response) for s in ds) / n:.0f}",
                      *([str(cut[ds.name])] if cut is not None else []))
    console.print(table)
    if cut is not None and any(cut.values()):
        console.print(f"{sum(cut.values())} traces are longer than {max_length} tokens (prompt + response) for "
                      f"{st.name}: scoring cuts them and their alignment is NaN (truncated); raise "
                      f"--score-max-length, up to the student's context ({st.context_length})", soft_wrap=True)
    if items is not None:
        console.print(f"eval set {c.eval}: {len(items)} questions")


command(data_app, "check", CheckCommand, run_check, help="""Load datasets with the same rules every command uses,
and report rows, rejects and gold coverage.

Example:

    dmc data check data/*.jsonl --eval data/eval.jsonl --on-error skip --rejects-dir rejects

With --student, also the traces the student's scoring would cut at the scoring max_length:

    dmc data check data/*.jsonl --student smollm2-135m --score-max-length 2048
""")
