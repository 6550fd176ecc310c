"""Root typer app: `dmc --help`, `dmc --version`, and the stage commands.

Stage modules (dmc.cli.<stage>) define their commands on `app` (or on a sub-app they add with
`app.add_typer`). They are imported when their command runs or shows its help, never for
`dmc --help`: a stage's options derive from settings that live beside torch and transformers,
and importing those takes seconds, while `dmc --help` lists the commands from :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

from dmc import __version__

# command -> (the module that registers it, its one line in `dmc --help`), in pipeline order
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("dmc.cli.data", "Inspect and validate candidate datasets and eval sets."),
    "stats": ("dmc.cli.stats", "Token statistics and student attempts, as cached, resumable Parquet tables."),
    "score": ("dmc.cli.score", "DMC and baseline metrics per dataset and per sample."),
    "select": ("dmc.cli.select", "Static selection (top dataset, mixture, top samples) as SFT-ready JSONL."),
    "lab": ("dmc.cli.lab", "The built-in miniature world: tasks, teachers, students."),
    "train": ("dmc.cli.train", "Plain SFT (full or LoRA) of a student on one dataset."),
    "distill": ("dmc.cli.train", "SFT on a pool under a data strategy or the dynamic DMC curriculum."),
    "eval": ("dmc.cli.evaluate", "Accuracy of a student on an eval set (pass@1, pass@k, maj@k)."),
    "validate": ("dmc.cli.validate", "E1 correlations, E2 static selection, E3 curricula on cheap pilots."),
    "report": ("dmc.cli.report", "HTML + Markdown report with plots of validation runs."),
    "demo": ("dmc.cli.demo", "Everything above on the lab, in minutes on 2 CPU cores."),
}


class _Summary:
    """What `dmc --help` reads of a command, without importing it."""

    hidden = deprecated = False

    def __init__(self, name: str, text: str):
        self.name, self.help, self.short_help = name, text, text


class LazyGroup(TyperGroup):
    """The root group: commands from :data:`COMMANDS`, each imported on first use."""

    listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        if self.listing:
            return _Summary(cmd_name, COMMANDS[cmd_name][1])
        if cmd_name not in self.commands:
            importlib.import_module(COMMANDS[cmd_name][0])  # registers the command on `app`
            self.commands[cmd_name] = typer.main.get_group(app).commands[cmd_name]
        return self.commands[cmd_name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


app = typer.Typer(
    name="dmc",
    cls=LazyGroup,
    help="DMC: score how compatible reasoning-distillation data is with a given student, "
    "validate that the score predicts learning, and drive a curriculum with it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dmc {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """DMC: student-centered data selection for reasoning distillation."""
