"""`dmc train` (plain SFT on one dataset) and `dmc distill` (SFT on a pool under a data strategy)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import typer
from rich.console import Console
from rich.table import Table
from transformers import TrainerCallback

from dmc.cli.app import app
from dmc.cli.evaluate import eval_table
from dmc.cli.options import (CACHE, DEVICE, FIELDS, POOL, PROGRESS, STUDENT, USER_ERRORS, command, error_text, fail,
                             field_map, require)
from dmc.curriculum import CurriculumSettings, parse_strategy
from dmc.curriculum.rescore import distributed_world
from dmc.data import load_dataset, load_eval_set, load_pool
from dmc.scoring import ScoringSettings
from dmc.settings import VERIFIER, Spec, setting
from dmc.students import load_student
from dmc.training import TrainConfig, distill, train

RESUME = Spec("Resume from the latest checkpoint in OUT/checkpoints (needs --save-every).", default=False,
              result=False)
TRAIN_DTYPE = Spec("Weights dtype when loading the student (float32 keeps full-precision master weights).",
                   default="float32", result=False, choices=("auto", "float32", "bfloat16", "float16"))


def _progress(console: Console, steps: int):
    """A callback printing the loss about 20 times per run (the library itself prints nothing)."""
    every = max(1, steps // 20)

    class _Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if (logs and "loss" in logs and state.is_world_process_zero
                    and (state.global_step % every == 0 or state.global_step == state.max_steps)):
                console.print(f"step {state.global_step}/{state.max_steps}  loss {logs['loss']:.4f}")

    return _Progress()


def _report(console: Console, result, title: str) -> None:
    if distributed_world()[0] != 0:
        return  # under torchrun every rank ran the command; rank 0 reports
    t = Table(title=title)
    t.add_column("")
    t.add_column("value", justify="right")
    t.add_row("optimizer steps", str(result.global_step))
    t.add_row("mean train loss", f"{result.train_loss:.4f}")
    t.add_row("train seconds", f"{result.metrics.get('train_seconds', float('nan')):.1f}")
    cur = result.metrics.get("curriculum")
    if cur:
        t.add_row("rows drawn per dataset", ", ".join(f"{k}={v}" for k, v in cur["rows_drawn"].items()))
        if "rescore_seconds" in cur:
            t.add_row("re-scores (seconds, share of training)",
                      f"{cur['n_rescores']} ({cur['rescore_seconds']:.1f} s, {100 * cur['rescore_fraction_of_train']:.1f}%)")
    console.print(t)
    if result.final_eval is not None:
        console.print(eval_table(result.final_eval, "final evaluation"))
    console.print(f"run directory: {result.run_dir} (config.json, log.jsonl, metrics.json"
                  + (", model/" if result.model_dir else "") + ")")


@dataclass(frozen=True)
class TrainCommand:
    """`dmc train`: plain SFT of a student on one dataset."""

    data: tuple[str, ...] = setting((), "One dataset file (.jsonl/.json/.parquet) of teacher traces.", result=False,
                                    positional=True, path="in")
    student: str | None = STUDENT.field()
    out: str | None = setting(None, "Run directory. Required.", result=False, path="out_dir")
    eval: str | None = setting(None, "Eval set for periodic and final accuracy.", result=False, path="in")
    fields: tuple[str, ...] = FIELDS.field()
    resume: bool = RESUME.field()
    device: str = DEVICE.field()
    dtype: str = TRAIN_DTYPE.field()
    verifier: str = VERIFIER.field()
    train: TrainConfig = setting(help="Training settings.", default_factory=TrainConfig)


@dataclass(frozen=True)
class DistillCommand:
    """`dmc distill`: SFT on a pool of candidate datasets under a data strategy."""

    pool: tuple[str, ...] = POOL.field()
    student: str | None = STUDENT.field()
    eval: str | None = setting(None, "Eval set: the target questions and the final accuracy. Required.",
                               result=False, path="in")
    fields: tuple[str, ...] = FIELDS.field()
    out: str | None = setting(None, "Run directory. Required.", result=False, path="out_dir")
    strategy: str = setting("dynamic-dmc", "uniform, random-dataset, static-dmc, static-dmc-mix, dynamic-dmc, "
                            "static:<metric> (static:rsr, static:ifd, static:teacher-accuracy, static:length ...), or "
                            "a fixed schedule schedule:A,B@120,C@0.75 (each dataset from an optimizer step or a "
                            "fraction of the run).")
    cache: str | None = CACHE.field()
    resume: bool = RESUME.field()
    device: str = DEVICE.field()
    dtype: str = TRAIN_DTYPE.field()
    progress: bool = PROGRESS.field()
    train: TrainConfig = setting(help="Training settings.", default_factory=TrainConfig)
    curriculum: CurriculumSettings = setting(help="The data strategy's settings.", default_factory=CurriculumSettings)
    scoring: ScoringSettings = setting(help="How the pool is scored (static scores and re-scores).",
                                       default_factory=ScoringSettings)


def run_train(c: TrainCommand) -> None:
    require(len(c.data) == 1, "exactly one dataset file (DATA)")
    require(c.student, "--student")
    require(c.out, "--out")
    console = Console()
    try:
        fields = field_map(c.fields)
        ds = load_dataset(c.data[0], fields=fields)
        items = load_eval_set(c.eval, fields=fields) if c.eval else None
        cfg = dataclasses.replace(c.train, output_dir=str(c.out))
        stud = load_student(c.student, device=c.device, dtype=c.dtype)
        res = train(stud, ds, cfg, eval_items=items, resume_from_checkpoint=True if c.resume else None,
                    verifier=c.verifier, callbacks=[_progress(console, cfg.steps)])
    except USER_ERRORS as e:
        fail(error_text(e))
    _report(console, res, f"SFT of {stud.name} on {ds.name}")


def run_distill(c: DistillCommand) -> None:
    require(c.pool, "candidate datasets (POOL... or `pool:` in --config)")
    require(c.student, "--student")
    require(c.eval, "--eval")
    require(c.out, "--out")
    console = Console()
    try:
        parse_strategy(c.strategy)
        fields = field_map(c.fields)
        candidates = load_pool(list(c.pool), fields=fields)
        items = load_eval_set(c.eval, fields=fields)
        cfg = dataclasses.replace(c.train, output_dir=str(c.out))
        stud = load_student(c.student, device=c.device, dtype=c.dtype)
        main = distributed_world()[0] == 0
        if main and c.strategy == "dynamic-dmc" and c.train.steps <= c.curriculum.rescore_interval(c.train.steps):
            typer.echo(f"warning: --steps {c.train.steps} <= --rescore-every {c.curriculum.rescore_every}: dynamic-dmc "
                       "will never re-score (it keeps its first mixture); lower --rescore-every", err=True)
        if main and parse_strategy(c.strategy)[0] not in ("uniform", "random-dataset", "schedule"):
            typer.echo(f"scoring {len(candidates)} candidate datasets with {stud.name} for {c.strategy} "
                       "(statistics are cached: a rerun reuses them) ...", err=True)
        res = distill(candidates, stud, items, strategy=c.strategy, config=cfg, settings=c.curriculum,
                      scoring=c.scoring, cache_dir=c.cache, resume_from_checkpoint=True if c.resume else None,
                      verifier=c.scoring.metric.verifier, progress=c.progress,
                      callbacks=[_progress(console, cfg.steps)])
    except USER_ERRORS as e:
        fail(error_text(e))
    _report(console, res, f"distillation of {stud.name}, strategy {c.strategy}")


command(app, "train", TrainCommand, run_train, help="""Plain SFT of STUDENT on DATA (loss on the response tokens),
saving a Hugging Face model in OUT/model.

Example:

    dmc train lab/listops/pool/stepwise.jsonl --student lab-small --eval lab/listops/eval.jsonl --out run --steps 100
""")

command(app, "distill", DistillCommand, run_distill, help="""Distill into STUDENT from a pool of candidate datasets
under a data strategy, then evaluate.

Example:

    dmc distill lab/listops/pool --student lab-small --eval lab/listops/eval.jsonl --strategy dynamic-dmc --out run
""")
