"""`dmc stats`: token statistics and student attempts for candidate datasets, as Parquet tables."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import typer
from rich.console import Console
from rich.markup import escape

from dmc.cli.app import app


@app.command("stats")
def stats(
    datasets: list[Path] = typer.Argument(..., help="Candidate dataset files or directories (each file is one dataset)."),
    student: str = typer.Option(..., "--student", help="A built-in student name, a Hugging Face model directory or a .gguf file."),
    out: Path = typer.Option(..., "--out", help="Output directory: tokens.parquet and attempts.parquet are written here."),
    eval_set: Path | None = typer.Option(None, "--eval", help="Eval set (JSONL ...): its questions are attempted too."),
    max_samples: int | None = typer.Option(None, "--max-samples", min=1, help="Keep at most N samples per dataset (same questions across datasets)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the subsampling and of the student's sampled attempts."),
    max_length: int = typer.Option(1024, "--max-length", min=2, help="Max tokens of prompt + response; longer responses are cut and flagged truncated."),
    batch_tokens: int = typer.Option(8192, "--batch-tokens", min=1, help="Padded tokens per scoring batch."),
    k: int = typer.Option(1, "--k", min=1, help="Attempts per question."),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="Sampling temperature of attempts; 0 = greedy."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus mass of sampled attempts."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Generation budget per attempt."),
    ifd: bool = typer.Option(False, "--ifd/--no-ifd", help="Also score each response without its question (for IFD)."),
    attempts: bool = typer.Option(True, "--attempts/--no-attempts", help="Run the student's own attempts (for its pass rate)."),
    cache: Path | None = typer.Option(None, "--cache", help="Cache directory (default: OUT/cache); finished work is reused."),
    device: str = typer.Option("cpu", "--device", help="Torch device of the student."),
    dtype: str = typer.Option("auto", "--dtype", help="Student dtype: auto, float32, bfloat16 or float16."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Score candidate datasets with a student: per-token log-prob/rank/entropy and graded attempts."""
    from dmc.data import DataError, load_eval_set, load_pool
    from dmc.stats import (ATTEMPTS_SCHEMA, TOKENS_SCHEMA, AttemptSettings, StatsCache, TokenStatsSettings,
                           UnsupportedModelError, compute_attempts, compute_token_stats)
    from dmc.stats.cache import atomic_write_parquet
    from dmc.stats.subsample import subsample
    from dmc.stats.summary import pass_rate, summarize
    from dmc.students import load_student

    console = Console()
    try:
        tok_settings = TokenStatsSettings(max_length=max_length, batch_tokens=batch_tokens, with_ifd=ifd)
        att_settings = AttemptSettings(k=k, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
        pool = load_pool(datasets)
        items = load_eval_set(eval_set) if eval_set else []
        st = load_student(student, dtype=dtype, device=device)
    except (DataError, FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2) from None

    samples = [s for ds in pool for s in subsample(ds.samples, max_samples, seed)]
    store = StatsCache(cache if cache is not None else out / "cache")
    say = _say(console)
    say(f"student {st.name} ({st.fingerprint}); {len(samples)} samples from {len(pool)} datasets; cache {store.root}")
    try:
        tokens = compute_token_stats(st, samples, tok_settings, cache=store, progress=progress)
        _report_run(say, "token statistics", tokens.attrs["run"], "samples")
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_parquet(pa.Table.from_pandas(tokens, schema=TOKENS_SCHEMA, preserve_index=False),
                             out / "tokens.parquet")
        att = None
        if attempts:
            att = compute_attempts(st, [*samples, *items], att_settings, cache=store, progress=progress)
            _report_run(say, "student attempts", att.attrs["run"], "questions")
            atomic_write_parquet(pa.Table.from_pandas(att, schema=ATTEMPTS_SCHEMA, preserve_index=False),
                                 out / "attempts.parquet")
        elif (out / "attempts.parquet").exists():
            # A previous run's table would no longer match these tokens.
            (out / "attempts.parquet").unlink()
            say(f"removed the previous run's {out / 'attempts.parquet'} (--no-attempts)")
    except (ValueError, UnsupportedModelError, FloatingPointError) as e:
        # Finished batches are in the cache: a corrected re-run resumes from them.
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2) from None

    for line in summarize(tokens, att):
        say(line.line())
    if items and att is not None:
        from dmc.stats import question_hash

        pr, ng = pass_rate(att, [question_hash(it) for it in items])
        say(f"eval set {eval_set.name}: {len(items)} questions, student pass rate "
            + (f"{pr:.1%} ({ng} gradable attempts)" if ng else "n/a"))
    written = "tokens.parquet" + (", attempts.parquet" if att is not None else "")
    say(f"wrote {written} to {out}")


def _say(console: Console):
    """Plain lines, never wrapped (they are read by people and by scripts)."""
    return lambda msg: console.print(escape(msg), highlight=False, soft_wrap=True)


def _report_run(say, what: str, run: dict, unit: str) -> None:
    say(f"{what}: {run['computed']} {unit} computed, {run['reused']} reused from cache"
        + (f"; {len(run['bad_shards'])} unreadable cache shards ignored" if run["bad_shards"] else ""))
