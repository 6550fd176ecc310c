"""`dmc lab ...`: build the lab's candidate pool and eval set, pretrain lab students, list them."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import typer

from dmc.cli.app import app
from dmc.cli.options import command, require
from dmc.settings import SEED, setting
from dmc.lab import ALL_FAMILIES, LAB_ARCHS, LAB_TASKS, TEACHERS, build_lab, chainsum, lab_students, pretrain, standard_pool, students_dir

lab_app = typer.Typer(help="The built-in miniature world: tasks, teachers, students.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")


@dataclass(frozen=True)
class BuildCommand:
    """`dmc lab build`: which task, how many samples, which seed, where."""

    out: str | None = setting(None, "Output directory. Required.", result=False, path="out_dir")
    task: str | None = setting(None, f"Task: {', '.join(LAB_TASKS)} (default: every family the lab students were "
                               "pretrained on; wordops, boolchain and bubblesort are development families they never saw; cups and weekdays are held out of every choice of defaults).", choices=LAB_TASKS)
    n: int = setting(256, "Samples per candidate dataset.", min=1)
    n_eval: int = setting(128, "Eval questions per family.", min=1)
    seed: int = SEED.field()


def run_build(c: BuildCommand) -> None:
    require(c.out, "--out")
    paths = build_lab(c.out, family=c.task, n=c.n, n_eval=c.n_eval, seed=c.seed)
    for fam, lp in paths.items():
        typer.echo(f"{fam}: {len(lp.pool)} candidate datasets in {lp.eval.parent / 'pool'}, eval set {lp.eval}")
    typer.echo(f"manifest: {Path(c.out) / 'lab.json'}")


@dataclass(frozen=True)
class PretrainCommand:
    """`dmc lab pretrain`: which lab student, how long, where."""

    student: str | None = setting(None, "Lab student architecture. Required.", choices=LAB_ARCHS)
    out: str | None = setting(None, "Output Hugging Face directory. Required.", result=False, path="out_dir")
    seed: int = SEED.field()
    steps: int | None = setting(None, "Training steps (default: the student's recipe).", min=1)
    threads: int = setting(1, "torch threads (1 is fastest on a shared machine).", result=False, min=1)
    eval_n: int = setting(128, "Eval questions per family for the initial accuracy (0: skip).", min=0)


def run_pretrain(c: PretrainCommand) -> None:
    require(c.student, "--student")
    require(c.out, "--out")
    command_line = "dmc " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    m = pretrain(c.student, c.out, seed=c.seed, steps=c.steps, threads=c.threads, eval_n=c.eval_n,
                 command=command_line, log=typer.echo)
    typer.echo(f"wrote {c.out} (final loss {m['final_loss']:.4f})")


command(lab_app, "build", BuildCommand, run_build, help="""Write OUT/<family>/pool/<dataset>.jsonl,
OUT/<family>/eval.jsonl and OUT/lab.json.

Example:

    dmc lab build --out lab --task chainsum --n 128 --n-eval 96
""")
command(lab_app, "pretrain", PretrainCommand, run_pretrain, help="""Pretrain a lab student on the generic lab corpus
(deterministic for a seed).

Example:

    dmc lab pretrain --student lab-small --out students/lab-small
""")


@lab_app.command("list")
def list_cmd() -> None:
    """List task families (and the chain-sum testbed), teachers, the standard pool and the shipped students."""
    for name, fam in ALL_FAMILIES.items():
        typer.echo(f"family {name}: {fam.description}")
        for spec in standard_pool(name):
            params = f" {json.dumps(spec.params)}" if spec.params else ""
            typer.echo(f"  {spec.name}: teacher {spec.teacher}{params}, questions {spec.distribution}")
    typer.echo(f"family {chainsum.NAME}: {chainsum.DESCRIPTION}")
    for cs in chainsum.chainsum_pool():
        params = f" {json.dumps(cs.params)}" if cs.params else ""
        lo, hi = chainsum.MIXES[cs.distribution].steps
        terms = f"{lo}" if lo == hi else f"{lo}-{hi}"
        digits = "/".join(map(str, chainsum.MIXES[cs.distribution].size))
        typer.echo(f"  {cs.name}: style {cs.teacher}{params}, questions {cs.distribution} ({terms} terms, {digits}-digit)")
    for t in TEACHERS.values():
        typer.echo(f"teacher {t.name}: {t.description}")
    for s in lab_students():
        m = json.loads((students_dir() / s / "manifest.json").read_text())
        acc = ", ".join(f"{f} {v['accuracy']:.0%}" for f, v in m.get("initial_accuracy", {}).items())
        typer.echo(f"student {s}: {m['n_parameters']:,} parameters; initial accuracy {acc}")
