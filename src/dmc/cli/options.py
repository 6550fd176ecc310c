"""CLI commands derived from typed settings (dmc.settings): one option per declared setting.

A command is a frozen dataclass of settings (nested settings included) plus the function that
runs it. :func:`command` registers it on a typer app:

- every field becomes an option: its flag, default, help and checks come from its declaration,
  so a CLI default can never drift from the dataclass default;
- settings shared by several classes (one :class:`dmc.settings.Spec`, e.g. ``--seed``) are one
  option that sets every field declared with it;
- ``--config FILE.yaml`` (or .json) gives any of them, nested like the dataclasses; options given
  on the command line override the file, the file overrides the declared defaults.

Bad values end with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import click
import typer
import yaml
from rich.console import Console

from dmc.data import DataError, FieldMap
from dmc.stats import UnsupportedModelError
from dmc.settings import Spec, field_types, from_dict, load_config, nested_class, set_path, spec_of

USAGE_ERROR = 2  # a bad argument, input or setting: one line on stderr
INTERRUPTED = 130  # Ctrl-C, as the shell reports SIGINT


@dataclass
class Option:
    """One CLI option: its flag, the settings paths it sets, its declaration, type and default."""

    name: str  # the Python parameter name
    flag: str
    paths: list[str]
    spec: Spec
    type: Any
    default: Any
    owners: list[str]  # "Class.field" of each field it sets (how settings errors name them)


def _flag(name: str, spec: Spec) -> str:
    return spec.flag or "--" + name.replace("_", "-")


def _walk(cls: type, default: Any, prefix: str = "") -> list[tuple[str, str, Spec, Any, Any, str]]:
    """(path, field name, spec, type, default, "Class.field") of every leaf setting of ``cls``."""
    out = []
    hints = field_types(cls)
    for f in fields(cls):
        spec = spec_of(f)
        value = getattr(default, f.name) if default is not None else None
        path = f"{prefix}{f.name}"
        sub = nested_class(hints[f.name])
        if sub is not None:
            out += _walk(sub, value if is_dataclass(value) else None, path + ".")
        elif spec.cli:
            out.append((path, f.name, spec, hints[f.name], value, f"{cls.__name__}.{f.name}"))
    return out


def options(cls: type, default: Any) -> list[Option]:
    """The options of a command whose settings are ``cls`` with defaults ``default`` (an instance,
    or None where the class has required fields). A flag declared twice must be the same setting
    (same Spec and default), else this raises: two settings cannot share a flag by accident."""
    by_flag: dict[str, Option] = {}
    for path, name, spec, tp, value, owner in _walk(cls, default):
        flag = _flag(name, spec)
        if flag in by_flag:
            o = by_flag[flag]
            if o.spec != spec or o.default != value:
                raise TypeError(f"{cls.__name__}: flag {flag} is declared by {o.paths[0]} and {path} as different settings")
            o.paths.append(path)
            o.owners.append(owner)
            continue
        by_flag[flag] = Option(flag.lstrip("-").replace("-", "_"), flag, [path], spec, tp, value, [owner])
    return list(by_flag.values())


def _kind(tp: Any) -> str:
    """How an option is read from the command line: plain (click converts), list (comma-separated)
    or yaml (a YAML scalar or list, for unions such as `bool | "auto"`)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    base = args[0] if len(args) == 1 else tp
    if base in (int, float, str, bool, Path):
        return "plain"
    if typing.get_origin(base) in (tuple, list) and all(a in (int, str, float, Ellipsis) for a in typing.get_args(base)):
        return "list"
    return "yaml"


def _annotation(o: Option) -> Any:
    if o.spec.positional or o.spec.repeat:
        return list[str] | None
    args = [a for a in typing.get_args(o.type) if a is not type(None)]
    optional = type(None) in typing.get_args(o.type)
    if _kind(o.type) == "plain":
        base = args[0] if len(args) == 1 else o.type
        return base | None if optional or o.default is None else base
    return str | None


def _show(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(map(str, v))
    return "none" if v is None else str(v)


def _parameter(o: Option) -> inspect.Parameter:
    kind = _kind(o.type)
    text = o.spec.help
    if o.spec.choices:
        text += f" [choices: {', '.join(map(str, o.spec.choices))}]"
    if o.spec.positional:
        info = typer.Argument(None, help=text, show_default=False)
    elif o.spec.repeat:
        info = typer.Option(None, o.flag, help=text, show_default=False)
    elif kind == "plain" and nested_type(o.type) is bool:
        name = o.flag.lstrip("-")
        info = typer.Option(o.default, f"--{name}/--no-{name}", help=text, metavar="")
    elif kind == "plain":
        info = typer.Option(o.default, o.flag, help=text, show_default=o.default is not None)
    else:
        info = typer.Option(None if o.default is None else _show(o.default), o.flag, help=text,
                            show_default=o.default is not None)
    return inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=_annotation(o))


def nested_type(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if len(args) == 1 else tp


def _parse(o: Option, raw: Any) -> Any:
    """The command-line value as the setting's value."""
    kind = _kind(o.type)
    if o.spec.positional or o.spec.repeat:
        return None if raw is None else [str(p) for p in raw]
    if raw is None or kind == "plain":
        return raw
    if kind == "list":
        item = typing.get_args(nested_type(o.type))[0]
        # ';' separates items that themselves hold commas (e.g. schedule:A,B@0.5 among E3's strategies)
        sep = ";" if ";" in str(raw) else ","
        parts = [p.strip() for p in str(raw).split(sep) if p.strip()]
        try:
            return [item(p) for p in parts]
        except ValueError:
            raise ValueError(f"{o.flag}: expected comma-separated {item.__name__} values, got {raw!r}") from None
    if str(raw).lower() in ("none", "null", ""):
        return None
    return yaml.safe_load(str(raw))


@contextlib.contextmanager
def interrupts() -> typing.Iterator[None]:
    """Ctrl-C ends a run with one line that says how to resume (every stage keeps finished work:
    statistics shards, pilots, checkpoints) and the shell's exit code for SIGINT."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: finished work is kept; run the same command again to resume "
                   f"({program_name()} {' '.join(sys.argv[1:])})", err=True)
        raise typer.Exit(INTERRUPTED) from None


def program_name() -> str:
    return Path(sys.argv[0]).name or "dmc"


def field_map(specs: typing.Sequence[str]) -> FieldMap | None:
    """The --field options as a FieldMap (None when none is given)."""
    try:
        return FieldMap.parse(list(specs)) if specs else None
    except ValueError as e:
        fail(f"--field: {e}")


# what a command reports as a user error (one line, exit 2) rather than a traceback
USER_ERRORS = (DataError, FileNotFoundError, ValueError, KeyError, UnsupportedModelError)


def error_text(e: BaseException) -> str:
    return str(e.args[0] if isinstance(e, KeyError) and e.args else e)  # KeyError's str() adds quotes


def require(value: object, what: str) -> None:
    if not value:
        fail(f"missing {what}")


def wide_console(stderr: bool = False) -> Console:
    """A console that does not squeeze wide tables into 80 columns when writing to a pipe or file."""
    c = Console(stderr=stderr)
    return c if c.is_terminal else Console(width=160, stderr=stderr)


def fail(message: str, code: int = USAGE_ERROR) -> typing.NoReturn:
    """One line on stderr, then exit: how every user error ends."""
    click.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def build(cls: type, opts: list[Option], ctx: click.Context, values: dict[str, Any], config: Path | None) -> Any:
    """The settings object from the declared defaults, then the config file, then the options
    given on the command line."""
    d = load_config(config) if config is not None else {}
    for o in opts:
        source = ctx.get_parameter_source(o.name)
        # typer vendors its own click: compare the source by name, not by enum class
        given = getattr(source, "name", None) in ("COMMANDLINE", "ENVIRONMENT")
        if (o.spec.positional or o.spec.repeat) and values.get(o.name):
            given = True
        if not given:
            continue
        value = _parse(o, values[o.name])
        for path in o.paths:
            set_path(d, path, value)
    try:
        settings = from_dict(cls, d)
    except ValueError as e:
        # name the flag the user typed, not the settings class behind it
        text = str(e)
        for o in opts:
            for owner in o.owners:
                text = text.replace(f"{owner} ", f"{o.flag if not o.spec.positional else o.name.upper()} ")
        raise ValueError(text) from None
    for o in opts:
        if o.spec.path:
            for path in o.paths:
                check_path(o.flag if not o.spec.positional else o.name.upper(), _get(settings, path), o.spec.path)
    return settings


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def check_path(label: str, value: Any, kind: str) -> None:
    """A path setting checked before any work starts, so that a run never fails at its end."""
    for v in value if isinstance(value, (tuple, list)) else (value,):
        if v is None:
            continue
        p = Path(v)
        if kind == "in" and not p.exists():
            raise FileNotFoundError(f"{label} {p}: no such file or directory")
        if kind == "out_dir" and p.exists() and not p.is_dir():
            raise ValueError(f"{label} {p} is a file; give a directory (it is created when missing)")
        if kind == "out_file" and p.is_dir():
            raise ValueError(f"{label} {p} is a directory; give a file name")


def command(app: typer.Typer, name: str, cls: type, run: Callable[[Any], None], *, help: str,
            default: Any = None) -> Callable[..., None]:
    """Register ``run(settings)`` as ``dmc NAME`` with one option per setting of ``cls`` and a
    ``--config`` file. ``help`` is the command's help (its first line the summary; an example
    below it). ``default``: the instance whose values are the shown defaults (default: ``cls()``)."""
    if default is None:
        default = cls()
    opts = options(cls, default)

    def cmd(ctx: typer.Context, **values: Any) -> None:
        try:
            settings = build(cls, opts, ctx, values, values.get("config"))
        except (ValueError, FileNotFoundError, TypeError, KeyError) as e:
            fail(str(e.args[0] if isinstance(e, KeyError) and e.args else e))
        with interrupts():
            run(settings)

    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    params += [_parameter(o) for o in opts]
    params.append(inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, annotation=Path | None,
                                    default=typer.Option(None, "--config", help="A YAML or JSON file of settings, "
                                                         "nested like the settings classes; options given here "
                                                         "override it.", show_default=False)))
    cmd.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    cmd.__annotations__ = {p.name: p.annotation for p in params}
    cmd.__doc__ = help
    cmd.__name__ = name.replace("-", "_")
    app.command(name, context_settings={"max_content_width": 120})(cmd)
    return cmd


# -- settings every command that runs a student shares ------------------------------------------------
STUDENT = Spec("A built-in student name (smollm2-135m, lab-small, lab-base), a Hugging Face model directory or "
               "a .gguf file. Required.", default=None, result=False)
DEVICE = Spec("Torch device of the student: cpu or cuda.", default="cpu", result=False)
DTYPE = Spec("Student dtype: auto, float32, bfloat16 or float16.", default="auto", result=False,
             choices=("auto", "float32", "bfloat16", "float16"))
PROGRESS = Spec("Show progress bars.", default=True, result=False)
CACHE = Spec("Statistics cache directory (default: OUT/cache for score and stats, else $DMC_CACHE/stats or "
             ".dmc-cache); a re-run reuses it.", default=None, result=False, path="out_dir")
FIELDS = Spec("Read a column under another name, FIELD=COLUMN, once per field (e.g. --field question=problem "
              "--field response=solution --field gold=answer); fields: id, question, response, gold, meta, "
              "messages, conversations, prompt, completion, reasoning.", default=(), result=False, flag="--field",
              repeat=True)
POOL = Spec("Candidate dataset files or directories (each file is one dataset).", default=(), result=False,
            positional=True, path="in")
