"""Root typer app: `dmc --help`, `dmc --version`, and the stage commands.

Stage modules (dmc.cli.<stage>) define their commands on `app` (or on a sub-app they add with
`app.add_typer`); importing them here is what registers them.
"""

from __future__ import annotations

import importlib

import typer

from dmc import __version__

app = typer.Typer(
    name="dmc",
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


# Order here is the order of the pipeline in `dmc --help`.
_STAGES = ["data", "stats", "score", "select", "lab", "train", "evaluate", "validate", "report", "demo"]
for _name in _STAGES:
    try:
        importlib.import_module(f"dmc.cli.{_name}")
    except ModuleNotFoundError as e:  # a stage not built yet registers nothing
        if e.name != f"dmc.cli.{_name}":
            raise
