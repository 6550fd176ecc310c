"""Typed settings, each declared once: its default, its help, and whether it changes results.

Every setting of the project is a field of a frozen dataclass, declared with :func:`setting`::

    @dataclass(frozen=True)
    class AttemptSettings:
        k: int = setting(1, "Student attempts per question.", flag="--attempt-k", min=1)
        batch_size: int = setting(16, "Sequences per generation batch.", result=False, min=1)

From that one declaration the project derives

- the CLI options of every command that takes the settings (dmc.cli.options);
- config files (YAML or JSON, nested like the dataclasses: :func:`from_dict`, :func:`load_config`);
- cache keys (:func:`settings_key`): the fields declared ``result=True`` and a format version,
  so that changing a result-changing field changes the key and a throughput-only one does not.

A setting shared by several classes (the run's seed, the answer verifier) is declared once as a
:class:`Spec` and reused with :meth:`Spec.field`; one CLI flag then sets it everywhere.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from dmc.io import content_hash

META = "dmc"  # key of a field's metadata dict


class _Unset:
    """No default declared (dataclasses' own MISSING cannot be a field default)."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Spec:
    """What the project knows about one setting besides its type.

    help: one line for --help and the docs. result: the setting changes results (so it belongs in
    cache keys). flag: the CLI flag (default: --field-name); a bool flag gets a --no- form.
    choices / min / max: checked by :func:`check` (and shown in --help). cli: False keeps the
    setting out of the command line (still settable from config files and Python). positional:
    the command's argument rather than an option. path: how a command checks a path before any
    work starts ("in": it exists; "out_dir": it is not a file; "out_file": it is not a directory).
    repeat: a list option given once per value rather than comma-separated. keyed_if_set: a result
    setting added after caches were written enters keys only when it differs from its default, so
    that entries written before it existed (at what is now its default) stay valid.
    """

    help: str
    result: bool = True
    flag: str | None = None
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    cli: bool = True
    positional: bool = False
    path: str | None = None  # "in": must exist; "out_dir" / "out_file": must not be a file / a directory
    repeat: bool = False  # a list option given once per value (--field a=b --field c=d)
    default: Any = UNSET
    default_factory: Any = UNSET
    keyed_if_set: bool = False

    def field(self) -> Any:
        """A dataclass field carrying this spec (its default included)."""
        kw: dict[str, Any] = {"metadata": {META: self}}
        if self.default_factory is not UNSET:
            kw["default_factory"] = self.default_factory
        elif self.default is not UNSET:
            kw["default"] = self.default
        return dataclasses.field(**kw)


def setting(default: Any = UNSET, help: str = "", *, result: bool = True, flag: str | None = None,
            choices: tuple[Any, ...] | None = None, min: float | None = None, max: float | None = None,
            cli: bool = True, positional: bool = False, path: str | None = None, repeat: bool = False,
            default_factory: Any = UNSET, keyed_if_set: bool = False) -> Any:
    """A dataclass field declared with its default, help and role (see :class:`Spec`)."""
    return Spec(help, result, flag, choices, min, max, cli, positional, path, repeat, default,
                default_factory, keyed_if_set).field()


def spec_of(f: dataclasses.Field) -> Spec:
    spec = f.metadata.get(META)
    if spec is None:
        raise TypeError(f"field {f.name!r} is not declared with dmc.settings.setting()")
    return spec


def nested_class(tp: Any) -> type | None:
    """The settings dataclass a field holds (Optional[...] unwrapped), or None for a plain value."""
    for t in (tp, *typing.get_args(tp)):
        if isinstance(t, type) and is_dataclass(t):
            return t
    return None


def field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


# -- checks --------------------------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _base_types(tp: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(tp) if a is not type(None))
    return (tp,)


def _coerce(name: str, tp: Any, v: Any) -> Any:
    """`v` as the field's type where the conversion is lossless (YAML ints for floats, lists for
    tuples, str for Path); anything else is an error naming the field."""
    if v is None:
        if type(None) in typing.get_args(tp):
            return None
        raise ValueError(f"{name} must not be empty")
    for t in _base_types(tp):
        origin = typing.get_origin(t) or t
        if t is Any:
            return v
        if t is bool and isinstance(v, bool):
            return v
        if t is int and _is_int(v):
            return v
        if t is float and (_is_int(v) or isinstance(v, float)):
            return float(v)
        if t is float and isinstance(v, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(v)
            except ValueError:
                pass
        if t is str and isinstance(v, str):
            return v
        if t is Path and isinstance(v, (str, Path)):
            return Path(v)
        if origin is tuple and isinstance(v, (list, tuple)):
            args = [a for a in typing.get_args(t) if a is not Ellipsis]
            return tuple(_coerce(name, args[0], x) for x in v) if args else tuple(v)
        if origin is list and isinstance(v, (list, tuple)):
            args = typing.get_args(t)
            return [_coerce(name, args[0], x) for x in v] if args else list(v)
        if origin is dict and isinstance(v, Mapping):
            return dict(v)
        if typing.get_origin(t) is typing.Literal and v in typing.get_args(t):
            return v
    want = " or ".join(getattr(t, "__name__", str(t)) for t in _base_types(tp))
    raise ValueError(f"{name} must be {want}, got {v!r}")


def check(obj: Any) -> None:
    """Check every field of a settings object against its declared type, choices and range.

    Called from each settings class's ``__post_init__``; raises ValueError naming the field.
    """
    cls = type(obj)
    hints = field_types(cls)
    for f in fields(obj):
        spec = spec_of(f)
        name = f"{cls.__name__}.{f.name}"
        v = getattr(obj, f.name)
        if nested_class(hints[f.name]) is not None:
            continue
        fixed = _coerce(name, hints[f.name], v)
        if fixed is not v:
            object.__setattr__(obj, f.name, fixed)
            v = fixed
        if v is None:
            continue
        if spec.choices is not None and v not in spec.choices:
            raise ValueError(f"{name} must be one of {', '.join(map(str, spec.choices))}; got {v!r}")
        items = v if isinstance(v, (tuple, list)) else (v,)
        for x in items:
            if not isinstance(x, (int, float)) or isinstance(x, bool):
                continue
            if spec.min is not None and not x >= spec.min:
                raise ValueError(f"{name} must be >= {spec.min:.10g}, got {x!r}")
            if spec.max is not None and not x <= spec.max:
                raise ValueError(f"{name} must be <= {spec.max:.10g}, got {x!r}")


# -- dicts and files -----------------------------------------------------------------------------------
def to_dict(obj: Any) -> dict[str, Any]:
    """Every field, nested settings as nested dicts (JSON-ready: paths as str)."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        if is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, Path):
            v = str(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def from_dict(cls: type, d: Mapping[str, Any] | None, where: str = "") -> Any:
    """``cls`` built from a nested dict (a config file's content); unknown keys are errors that
    name their full path, missing keys take the declared defaults."""
    d = dict(d or {})
    hints = field_types(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ValueError(f"unknown setting(s) {', '.join(prefix + u for u in unknown)}; "
                         f"{cls.__name__} has: {', '.join(known)}")
    kw: dict[str, Any] = {}
    for name, value in d.items():
        sub = nested_class(hints[name])
        path = f"{where}.{name}" if where else name
        if sub is not None and isinstance(value, Mapping):
            # nested settings start from this field's own default (e.g. the pilots' training
            # budget), not from the nested class's defaults
            base = _field_default(known[name])
            value = from_dict(sub, _merge(to_dict(base), value) if is_dataclass(base) else value, path)
        elif sub is not None and value is not None and not isinstance(value, sub):
            raise ValueError(f"{path} must be a mapping of {sub.__name__} settings, got {value!r}")
        kw[name] = value
    obj = cls(**kw)
    check(obj)  # also for classes without a __post_init__ of their own (command settings)
    return obj


def _field_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in override.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def replace(obj: Any, **changes: Any) -> Any:
    """dataclasses.replace, re-running the checks."""
    return dataclasses.replace(obj, **changes)


def load_config(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON config file as a nested dict; errors name the file and line."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file {p} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        doc = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}:{e.lineno}: not valid JSON ({e.msg})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{p}{line}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ValueError(f"{p}: a config file must hold a mapping of settings, got {type(doc).__name__}")
    return doc


def set_path(d: dict[str, Any], path: str, value: Any) -> None:
    """d["a"]["b"] = value for path "a.b", creating the intermediate dicts."""
    *head, last = path.split(".")
    for k in head:
        nxt = d.setdefault(k, {})
        if not isinstance(nxt, dict):
            raise ValueError(f"setting {k!r} must be a mapping")
        d = nxt
    d[last] = value


# -- cache keys ----------------------------------------------------------------------------------------
def _key_value(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (tuple, list)):
        return [_key_value(x) for x in v]
    return v


def result_fields(obj: Any) -> dict[str, Any]:
    """The result-changing fields of a settings object, nested settings recursively."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        spec = spec_of(f)
        if not spec.result:
            continue
        v = getattr(obj, f.name)
        if spec.keyed_if_set and v == spec.default:
            continue
        out[f.name] = result_fields(v) if is_dataclass(v) else _key_value(v)
    return out


def settings_key(kind: str, version: str, *settings: Any, **identity: Any) -> str:
    """The one key rule: a cache entry of ``kind`` is keyed by its format ``version``, the
    result-changing fields of each settings object, and the identity of its inputs (student
    fingerprint, data hashes ...)."""
    return content_hash({"kind": kind, "version": version,
                         "settings": [{type(s).__name__: result_fields(s)} for s in settings],
                         **{k: _key_value(v) for k, v in identity.items()}})


# -- settings shared by several classes: declared once, one CLI flag sets them all ---------------------
SEED = Spec("The run's seed: subsampling, sampled attempts, bootstrap, random baseline, training.", default=0,
            flag="--seed")
VERIFIER = Spec("Answer verifier (dmc.grading): auto picks one per question.", default="auto", flag="--verifier")
N_BOOT = Spec("Bootstrap resamples of confidence intervals (0: none).", default=1000, flag="--n-boot", min=0)
CI = Spec("Level of confidence intervals, in (0, 1).", default=0.95, flag="--ci", min=1e-9, max=1 - 1e-9)
