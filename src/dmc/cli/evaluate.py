"""`dmc eval`: accuracy of a student on an eval set (greedy pass@1; pass@k and maj@k with --k)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dmc.cli.app import app
from dmc.data import DataError, load_eval_set
from dmc.evaluation import evaluate, summary_rows
from dmc.students import load_student


def load_student_or_exit(spec: str, *, device: str, dtype: str, console: Console):
    try:
        return load_student(spec, device=device, dtype=dtype)
    except (FileNotFoundError, ValueError, KeyError) as e:
        console.print(f"[red]error:[/red] cannot load student {spec!r}: {e}")
        raise typer.Exit(2) from None


def load_eval_or_exit(path: Path, console: Console, limit: int | None = None):
    try:
        items = load_eval_set(path)
    except (DataError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    return items[:limit] if limit else items


def eval_table(result, title: str) -> Table:
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for label, value in summary_rows(result):
        t.add_row(label, value)
    return t


@app.command("eval")
def eval_cmd(
    student: str = typer.Option(..., "--student", help="Student: a Hugging Face directory, a .gguf file, or a built-in name."),
    eval_set: Path = typer.Option(..., "--eval", help="Eval set (questions with gold answers)."),
    out: Path | None = typer.Option(None, "--out", help="Write per_question.parquet/.jsonl and summary.json here."),
    k: int = typer.Option(1, "--k", help="Samples per question for pass@k and maj@k (1 = greedy only)."),
    temperature: float = typer.Option(0.7, "--temperature", help="Sampling temperature of the k samples (greedy pass@1 is always computed)."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus mass of the k samples."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", help="Generation budget per answer."),
    batch_size: int = typer.Option(16, "--batch-size", help="Sequences per generation batch."),
    verifier: str = typer.Option("auto", "--verifier", help="Answer verifier: auto, exact, normalized, numeric, math."),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N questions."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16 or float16."),
) -> None:
    """Greedy accuracy (pass@1) of STUDENT on an eval set; with --k > 1 also pass@k and maj@k.
    Ungradable answers are counted apart and left out of every rate."""
    console = Console()
    items = load_eval_or_exit(eval_set, console, limit)
    stud = load_student_or_exit(student, device=device, dtype=dtype, console=console)
    try:
        res = evaluate(stud, items, k=k, temperature=temperature if k > 1 else 0.0, top_p=top_p,
                       max_new_tokens=max_new_tokens, batch_size=batch_size, verifier=verifier, seed=seed, out_dir=out)
    except ValueError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    console.print(eval_table(res, f"{stud.name} on {eval_set.name}"))
    if out is not None:
        console.print(f"per-question results: {out / 'per_question.parquet'} (and .jsonl); summary: {out / 'summary.json'}")
