"""`dmc stats`: token statistics and student attempts for candidate datasets, as Parquet tables."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from rich.console import Console
from rich.markup import escape

from dmc.cli.app import app
from dmc.cli.options import (CACHE, DEVICE, DTYPE, FIELDS, POOL, PROGRESS, STUDENT, USER_ERRORS, command, error_text,
                             fail, field_map, require)
from dmc.scoring import ScoringSettings, compute_tables, load_inputs, load_targets, subsample
from dmc.settings import setting
from dmc.stats import ATTEMPTS_SCHEMA, TOKENS_SCHEMA, BackendSettings, StatsCache, question_hash
from dmc.stats.cache import atomic_write_parquet
from dmc.stats.summary import pass_rate, summarize
from dmc.students import load_student


@dataclass(frozen=True)
class StatsCommand:
    """`dmc stats`: the statistics behind the scores, written as Parquet tables."""

    datasets: tuple[str, ...] = POOL.field()
    student: str | None = STUDENT.field()
    out: str | None = setting(None, "Output directory: tokens.parquet and attempts.parquet. Required.",
                              result=False, path="out_dir")
    eval: str | None = setting(None, "Eval set: its questions are attempted too.", result=False, path="in")
    fields: tuple[str, ...] = FIELDS.field()
    attempts: bool = setting(True, "Run the student's own attempts (for its pass rate).", result=False,
                             flag="--attempts")
    cache: str | None = CACHE.field()
    device: str = DEVICE.field()
    dtype: str = DTYPE.field()
    progress: bool = PROGRESS.field()
    scoring: ScoringSettings = setting(help="How the statistics are computed.", default_factory=ScoringSettings)
    execution: BackendSettings = setting(help="Where the statistics are computed (here or on Ray).", result=False,
                                         default_factory=BackendSettings)


def run_stats(c: StatsCommand) -> None:
    require(c.datasets, "candidate datasets (DATASETS... or `datasets:` in --config)")
    require(c.student, "--student")
    require(c.out, "--out")
    out = Path(c.out)
    say = _say(Console(stderr=True))
    try:
        fields = field_map(c.fields)
        pool = [subsample(d, c.scoring.max_samples, c.scoring.seed) for d in load_inputs(list(c.datasets), fields)]
        items, _ = load_targets(c.eval, fields)
        st = load_student(c.student, dtype=c.dtype, device=c.device)
    except USER_ERRORS as e:
        fail(error_text(e))
    samples = [s for ds in pool for s in ds]
    store = StatsCache(Path(c.cache) if c.cache is not None else out / "cache")
    say(f"student {st.name} ({st.fingerprint}); {len(samples)} samples from {len(pool)} datasets; cache {store.root}")
    needs = {"tokens"} | ({"tokens_noq"} if c.scoring.tokens.with_ifd else set()) | ({"attempts"} if c.attempts else set())
    if c.scoring.metric.capability == "likelihood":
        needs.add("answers")  # the gold-answer likelihoods that capability reads
    scoring = dataclasses.replace(c.scoring, metrics=())  # the tables asked for, not the metrics' needs
    try:
        # Finished batches are in the cache: a corrected re-run resumes from them.
        tables = compute_tables(st, samples, scoring, questions=[*samples, *(items or [])], needs=needs,
                                cache=store, progress=c.progress, backend=c.execution)
    except USER_ERRORS + (FloatingPointError,) as e:
        fail(error_text(e))
    tokens, att = tables.tokens, tables.attempts
    _report_run(say, "token statistics", tables.run["tokens"], "samples")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(pa.Table.from_pandas(tokens, schema=TOKENS_SCHEMA, preserve_index=False), out / "tokens.parquet")
    if att is not None:
        _report_run(say, "student attempts", tables.run["attempts"], "questions")
        atomic_write_parquet(pa.Table.from_pandas(att, schema=ATTEMPTS_SCHEMA, preserve_index=False),
                             out / "attempts.parquet")
    elif (out / "attempts.parquet").exists():
        # A previous run's table would no longer match these tokens.
        (out / "attempts.parquet").unlink()
        say(f"removed the previous run's {out / 'attempts.parquet'} (--no-attempts)")
    if tables.answers is not None:
        _report_run(say, "answer likelihoods", tables.run["answers"], "answer probes")
        atomic_write_parquet(pa.Table.from_pandas(tables.answers, preserve_index=False), out / "answers.parquet")
    for line in summarize(tokens, att):
        say(line.line())
    if items and att is not None:
        pr, ng = pass_rate(att, [question_hash(it) for it in items])
        say(f"eval set {Path(c.eval).name}: {len(items)} questions, student pass rate "
            + (f"{pr:.1%} ({ng} gradable attempts)" if ng else "n/a"))
    written = ["tokens.parquet"] + (["attempts.parquet"] if att is not None else []) + \
        (["answers.parquet"] if tables.answers is not None else [])
    say(f"wrote {', '.join(written)} to {out}")


def _say(console: Console):
    """Plain lines, never wrapped (they are read by people and by scripts)."""
    return lambda msg: console.print(escape(msg), highlight=False, soft_wrap=True)


def _report_run(say, what: str, run: dict, unit: str) -> None:
    say(f"{what}: {run['computed']} {unit} computed, {run['reused']} reused from cache"
        + (f"; {len(run['bad_shards'])} unreadable cache shards ignored" if run["bad_shards"] else ""))


command(app, "stats", StatsCommand, run_stats, help="""Score candidate datasets with a student: per-token
log-prob/rank/entropy and graded attempts, as Parquet tables (cached and resumable).

Example:

    dmc stats lab/listops/pool --student lab-small --eval lab/listops/eval.jsonl --out stats
""")
