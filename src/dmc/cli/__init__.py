"""The `dmc` command line. Each stage registers its commands in a module of its own here."""

from dmc.cli.app import app

__all__ = ["app"]
