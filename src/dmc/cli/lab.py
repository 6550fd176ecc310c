"""`dmc lab ...`: build the lab's candidate pool and eval set, pretrain lab students, list them."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer

from dmc.cli.app import app
from dmc.lab import LAB_ARCHS, LAB_TASKS, TASK_FAMILIES, TEACHERS, build_lab, chainsum, lab_students, pretrain, standard_pool, students_dir

lab_app = typer.Typer(help="The built-in miniature world: tasks, teachers, students.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")


@lab_app.command("build")
def build(
    out: Path = typer.Option(..., "--out", help="Output directory."),
    task: str = typer.Option(None, "--task", help="Task family, or chainsum (default: every task family)."),
    n: int = typer.Option(256, "--n", help="Samples per candidate dataset."),
    n_eval: int = typer.Option(128, "--n-eval", help="Eval questions per family."),
    seed: int = typer.Option(0, "--seed", help="Seed for questions and teachers."),
) -> None:
    """Write OUT/<family>/pool/<dataset>.jsonl, OUT/<family>/eval.jsonl and OUT/lab.json."""
    if task is not None and task not in LAB_TASKS:
        raise typer.BadParameter(f"unknown task family {task!r}; known: {', '.join(LAB_TASKS)}", param_hint="--task")
    paths = build_lab(out, family=task, n=n, n_eval=n_eval, seed=seed)
    for fam, lp in paths.items():
        typer.echo(f"{fam}: {len(lp.pool)} candidate datasets in {lp.eval.parent / 'pool'}, eval set {lp.eval}")
    typer.echo(f"manifest: {Path(out) / 'lab.json'}")


@lab_app.command("pretrain")
def pretrain_cmd(
    student: str = typer.Option(..., "--student", help="Lab student architecture (lab-small, lab-base)."),
    out: Path = typer.Option(..., "--out", help="Output Hugging Face directory."),
    seed: int = typer.Option(0, "--seed"),
    steps: int = typer.Option(None, "--steps", help="Training steps (default: the student's recipe)."),
    threads: int = typer.Option(1, "--threads", help="torch threads (1 is fastest on a shared machine)."),
    eval_n: int = typer.Option(128, "--eval-n", help="Eval questions per family for the initial accuracy (0: skip)."),
) -> None:
    """Pretrain a lab student on the generic lab corpus (deterministic for a seed)."""
    if student not in LAB_ARCHS:
        raise typer.BadParameter(f"unknown lab student {student!r}; known: {', '.join(LAB_ARCHS)}", param_hint="--student")
    command = "dmc " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    m = pretrain(student, out, seed=seed, steps=steps, threads=threads, eval_n=eval_n, command=command,
                 log=typer.echo)
    typer.echo(f"wrote {out} (final loss {m['final_loss']:.4f})")


@lab_app.command("list")
def list_cmd() -> None:
    """List task families (and the chain-sum testbed), teachers, the standard pool and the shipped students."""
    for name, fam in TASK_FAMILIES.items():
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
