"""`dmc eval`: accuracy of a student on an eval set (greedy pass@1; pass@k and maj@k with --eval-k)."""

from __future__ import annotations

from pathlib import Path

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from dmc.cli.app import app
from dmc.cli.options import DEVICE, DTYPE, FIELDS, STUDENT, USER_ERRORS, command, error_text, fail, field_map, require
from dmc.data import load_eval_set
from dmc.evaluation import EVAL_BATCH_SIZE, EVAL_MAX_NEW_TOKENS, evaluate, summary_rows
from dmc.settings import SEED, VERIFIER, setting
from dmc.students import load_student
from dmc.students.vllm_engine import ENGINE


def eval_table(result, title: str) -> Table:
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for label, value in summary_rows(result):
        t.add_row(label, value)
    return t


@dataclass(frozen=True)
class EvalCommand:
    """`dmc eval`: which student on which eval set, and how answers are sampled and graded."""

    student: str | None = STUDENT.field()
    eval: str | None = setting(None, "Eval set (questions with gold answers). Required.", result=False,
                               path="in")
    fields: tuple[str, ...] = FIELDS.field()
    out: str | None = setting(None, "Write per_question.parquet/.jsonl and summary.json here.", result=False,
                              path="out_dir")
    k: int = setting(1, "Samples per question for pass@k and maj@k (1 = greedy only).", flag="--eval-k", min=1)
    temperature: float = setting(0.7, "Sampling temperature of the k samples (greedy pass@1 is always computed).",
                                 flag="--eval-temperature", min=0.0)
    top_p: float = setting(1.0, "Nucleus mass of the k samples, in (0, 1].", flag="--eval-top-p", min=1e-9, max=1.0)
    max_new_tokens: int = EVAL_MAX_NEW_TOKENS.field()
    batch_size: int = EVAL_BATCH_SIZE.field()
    limit: int | None = setting(None, "Only the first N questions.", flag="--eval-limit", min=1)
    verifier: str = VERIFIER.field()
    seed: int = SEED.field()
    device: str = DEVICE.field()
    dtype: str = DTYPE.field()
    engine: str = ENGINE.field()


def run_eval(c: EvalCommand) -> None:
    require(c.student, "--student")
    require(c.eval, "--eval")
    console = Console()
    try:
        items = load_eval_set(c.eval, fields=field_map(c.fields))[: c.limit]
        stud = load_student(c.student, device=c.device, dtype=c.dtype)
        res = evaluate(stud, items, k=c.k, temperature=c.temperature if c.k > 1 else 0.0, top_p=c.top_p,
                       max_new_tokens=c.max_new_tokens, batch_size=c.batch_size, verifier=c.verifier, seed=c.seed,
                       out_dir=c.out, engine=c.engine)
    except USER_ERRORS as e:
        fail(error_text(e))
    console.print(eval_table(res, f"{stud.name} on {Path(c.eval).name}"))
    if c.out is not None:
        out = Path(c.out)
        console.print(f"per-question results: {out / 'per_question.parquet'} (and .jsonl); summary: {out / 'summary.json'}")


command(app, "eval", EvalCommand, run_eval, help="""Greedy accuracy (pass@1) of STUDENT on an eval set; with
--eval-k > 1 also pass@k and maj@k. Ungradable answers are counted apart and left out of every rate.

Example:

    dmc eval --student run/model --eval lab/listops/eval.jsonl --eval-k 4
""")
