"""Settings are declared once: the CLI derives from them, config files fill them, cache keys follow
their declared result-changing fields."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from dmc.cli import app
from dmc.cli.evaluate import EvalCommand
from dmc.cli.options import _kind, _show, command, options
from dmc.cli.score import ScoreCommand
from dmc.cli.stats import StatsCommand
from dmc.cli.train import DistillCommand, TrainCommand
from dmc.cli.validate import ValidateCommand
from dmc.curriculum import CurriculumSettings
from dmc.metrics import MetricSettings
from dmc.scoring import ScoringSettings
from dmc.settings import SEED, field_types, from_dict, nested_class, result_fields, setting, settings_key, spec_of, to_dict
from dmc.stats import AttemptSettings, BackendSettings, TokenStatsSettings
from dmc.training import TrainConfig
from dmc.validation import ValidateConfig
from dmc.validation.protocol import eval_settings

COMMANDS = {"score": ScoreCommand, "stats": StatsCommand, "validate": ValidateCommand, "distill": DistillCommand,
            "train": TrainCommand, "eval": EvalCommand}
SETTINGS = [TokenStatsSettings, AttemptSettings, MetricSettings, ScoringSettings, TrainConfig, CurriculumSettings,
            ValidateConfig, BackendSettings]


def _get(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("name", list(COMMANDS))
def test_cli_defaults_are_the_dataclass_defaults(name):
    cls = COMMANDS[name]
    default = cls()
    params = {p.name: p for p in get_command(app).commands[name].params}
    opts = options(cls, default)
    assert opts, name
    for o in opts:
        p = params[o.name]
        for path in o.paths:  # every field one flag sets has the same default
            assert _get(default, path) == o.default, (name, path)
        if o.spec.positional or o.spec.repeat:  # given once per value; none given = the empty default
            assert p.default in (None, ()) and o.default == (), (name, o.flag)
            continue
        shown = o.default if _kind(o.type) == "plain" or o.default is None else _show(o.default)
        assert p.default == shown, f"dmc {name} {o.flag}: CLI default {p.default!r} != dataclass default {shown!r}"
        assert p.help and o.spec.help in p.help
    # every setting of the command is reachable from its command line (or deliberately not)
    leaves = {path for o in opts for path in o.paths}
    assert "out" in leaves or "output_dir" not in leaves


def test_validate_reaches_the_metric_and_curriculum_settings():
    opts = {o.flag: o.paths for o in options(ValidateCommand, ValidateCommand())}
    assert opts["--epsilon"] == ["validate.scoring.metric.epsilon"]
    assert opts["--rescore-every"] == ["validate.curriculum.rescore_every"]
    assert opts["--score-max-length"] == ["validate.scoring.tokens.max_length"]
    assert opts["--max-length"] == ["validate.train.max_length"]
    # one --seed for every seed of the run, one --verifier for every grader
    assert set(opts["--seed"]) == {"validate.train.seed", "validate.scoring.seed", "validate.scoring.attempts.seed",
                                   "validate.scoring.metric.seed"}
    assert set(opts["--verifier"]) == {"validate.scoring.attempts.verifier", "validate.scoring.metric.verifier"}
    # training's evaluations and `dmc eval` share one declaration of the eval budget
    assert options(EvalCommand, EvalCommand())[[o.flag for o in options(EvalCommand, EvalCommand())].index(
        "--eval-max-new-tokens")].spec == next(o.spec for o in options(DistillCommand, DistillCommand())
                                               if o.flag == "--eval-max-new-tokens")
    distill = {o.flag: o.paths for o in options(DistillCommand, DistillCommand())}
    assert distill["--sigma"] == ["scoring.metric.sigma"] and distill["--policy"] == ["curriculum.policy"]


@pytest.mark.parametrize("cls", SETTINGS)
def test_every_field_is_declared_with_help(cls):
    for f in fields(cls):
        assert spec_of(f).help, f"{cls.__name__}.{f.name} has no help"


# A valid value different from the default, for fields whose type alone does not give one.
OTHER = {
    "policy": "softmax", "mix_policy": "proportional", "attempt_budget": 7, "content": "words", "match_side": "easier",
    "bf16": True, "lora_targets": ["q_proj"], "metrics": ("dmc",), "experiments": ("e1",), "seeds": (1,),
    "e3_strategies": ("uniform",), "e2_metrics": ("dmc",), "extra": {"a": 1}, "lr_scheduler": "linear",
    "verifier": "numeric", "e2_policy": "topk:2", "rescore_every": 50, "probe_size": 24, "turns": "all", "rsr_turns": "all", "backend": "ray", "ray_address": "auto", "engine": "vllm",
}


def _other(name: str, value, tp, spec):
    if name in OTHER:
        return OTHER[name]
    if spec.choices is not None and isinstance(value, str):
        return next(c for c in spec.choices if c != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.5
    if value is None:
        return 3
    if isinstance(value, str):
        return value + "-x"
    raise AssertionError(f"no other value for {name}={value!r}")


def _leaves(cls, prefix=""):
    hints = field_types(cls)
    for f in fields(cls):
        sub = nested_class(hints[f.name])
        if sub is not None:
            yield from _leaves(sub, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f.name, spec_of(f), hints[f.name]


def _set(d: dict, path: str, value):
    *head, last = path.split(".")
    for k in head:
        d = d[k]
    d[last] = value


@pytest.mark.parametrize("cls", SETTINGS)
def test_cache_key_follows_the_result_fields(cls):
    base = cls()
    key = settings_key("t", "1", base)
    for path, name, spec, tp in _leaves(cls):
        d = to_dict(base)
        _set(d, path, _other(name, _get(base, path), tp, spec))
        changed = from_dict(cls, d)
        assert _get(changed, path) != _get(base, path), path
        # the result-changing flag of every enclosing field counts too
        result = all(spec_of(f).result for f in _path_fields(cls, path))
        assert (settings_key("t", "1", changed) != key) == result, f"{cls.__name__}.{path} (result={result})"
    assert settings_key("t", "2", base) != key  # the format version is part of every key


def _path_fields(cls, path):
    out = []
    for part in path.split("."):
        f = next(f for f in fields(cls) if f.name == part)
        out.append(f)
        cls = nested_class(field_types(cls)[part]) or cls
    return out


def test_statistics_keys_use_the_rule():
    t, a = TokenStatsSettings(), AttemptSettings()
    assert t.settings_hash != dataclasses.replace(t, max_length=2048).settings_hash
    assert t.settings_hash == dataclasses.replace(t, batch_tokens=1024).settings_hash
    assert a.settings_hash != dataclasses.replace(a, verifier="numeric").settings_hash
    assert a.settings_hash == dataclasses.replace(a, batch_size=3).settings_hash


def test_initial_accuracy_is_keyed_by_its_budget_and_verifier():
    cfg = ValidateConfig()
    longer = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, eval_max_new_tokens=512))
    other = from_dict(ValidateConfig, {"scoring": {"metric": {"verifier": "numeric"}}})
    keys = {settings_key("initial-accuracy", "1", **eval_settings(c)) for c in (cfg, longer, other)}
    assert len(keys) == 3


def test_nested_config_keeps_the_enclosing_default():
    cfg = from_dict(ValidateConfig, {"train": {"steps": 5}})
    pilots = ValidateConfig().train
    assert cfg.train.steps == 5 and cfg.train.learning_rate == pilots.learning_rate != TrainConfig().learning_rate
    with pytest.raises(ValueError, match="unknown setting.*train.stepz"):
        from_dict(ValidateConfig, {"train": {"stepz": 3}})
    with pytest.raises(ValueError, match="MetricSettings.epsilon must be <= 1"):
        from_dict(ScoringSettings, {"metric": {"epsilon": 2}})


# -- the derivation itself, on a settings class of its own ------------------------------------------
@dataclass(frozen=True)
class _Inner:
    width: float = setting(0.5, "Width.", min=0.0)
    seed: int = SEED.field()


@dataclass(frozen=True)
class _Toy:
    items: tuple[str, ...] = setting((), "Items.", positional=True, result=False)
    name: str = setting("a", "Name.", choices=("a", "b"))
    flag: bool = setting(False, "A flag.")
    sizes: tuple[int, ...] = setting((1, 2), "Sizes, comma-separated.")
    plans: tuple[str, ...] = setting(("a",), "Plans, comma-separated (';' when one holds a comma).")
    mode: bool | str = setting("auto", "true, false or auto.")
    seed: int = SEED.field()
    inner: _Inner = setting(help="Inner.", default_factory=_Inner)


def _toy_app(seen: list):
    toy = typer.Typer()
    command(toy, "toy", _Toy, seen.append, help="A toy.")

    @toy.command("other")
    def other() -> None:  # a second command keeps typer from collapsing the app into one command
        pass

    return toy


def test_config_file_then_command_line(tmp_path: Path):
    seen: list = []
    toy = _toy_app(seen)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: b\nsizes: [3, 4]\ninner:\n  width: 0.25\nitems: [x, y]\n")
    r = CliRunner().invoke(toy, ["toy", "--config", str(cfg), "--width", "0.75", "--seed", "7", "--flag",
                                 "--mode", "false"])
    assert r.exit_code == 0, r.output
    t = seen[-1]
    assert (t.name, t.sizes, t.inner.width, t.flag, t.mode, t.items) == ("b", (3, 4), 0.75, True, False, ("x", "y"))
    assert t.seed == 7 and t.inner.seed == 7  # one flag, every field declared with it
    r = CliRunner().invoke(toy, ["toy", "p", "q", "--sizes", "5,6"])
    assert r.exit_code == 0 and seen[-1].sizes == (5, 6) and seen[-1].items == ("p", "q") and seen[-1].mode == "auto"


def test_list_items_that_hold_commas_are_separated_by_semicolons():
    seen: list = []
    r = CliRunner().invoke(_toy_app(seen), ["toy", "--plans", "uniform;schedule:a,b@0.5; c"])
    assert r.exit_code == 0, r.output
    assert seen[-1].plans == ("uniform", "schedule:a,b@0.5", "c")
    r = CliRunner().invoke(_toy_app(seen), ["toy", "--plans", "x, y"])
    assert r.exit_code == 0 and seen[-1].plans == ("x", "y")


@pytest.mark.parametrize("args, message", [
    (["--name", "c"], "--name must be one of a, b"),
    (["--width", "-1"], "--width must be >= 0"),
    (["--sizes", "1,x"], "--sizes: expected comma-separated int values"),
    (["--config", "nope.yaml"], "config file nope.yaml does not exist"),
])
def test_bad_values_are_one_line_on_stderr(args, message):
    r = CliRunner().invoke(_toy_app([]), ["toy", *args])
    assert r.exit_code == 2
    assert r.output.strip() == f"error: {message}" or r.output.strip().startswith(f"error: {message}"), r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_unknown_config_key_names_its_path(tmp_path: Path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("inner:\n  widht: 1\n")
    r = CliRunner().invoke(_toy_app([]), ["toy", "--config", str(cfg)])
    assert r.exit_code == 2 and "unknown setting(s) inner.widht" in r.output


def test_score_config_file_reaches_the_settings(tmp_path: Path):
    cfg = tmp_path / "score.yaml"
    cfg.write_text(json.dumps({"scoring": {"metric": {"epsilon": 0.3}, "max_samples": 4}}))
    seen = from_dict(ScoreCommand, json.loads(cfg.read_text()))
    assert seen.scoring.metric.epsilon == 0.3 and seen.scoring.max_samples == 4
    r = CliRunner().invoke(app, ["score", "x.jsonl", "--config", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "does not exist" in r.output and "Traceback" not in r.output


def test_result_fields_are_nested():
    rf = result_fields(ValidateConfig())
    assert "workers" not in rf and "logging_steps" not in rf["train"] and "batch_tokens" not in rf["scoring"]["tokens"]
    assert rf["scoring"]["metric"]["epsilon"] == 1.0 and is_dataclass(ValidateConfig().train)


def test_ctrl_c_says_how_to_resume():
    def interrupted(settings):
        raise KeyboardInterrupt

    toy = typer.Typer()
    command(toy, "toy", _Toy, interrupted, help="A toy.")
    toy.command("other")(lambda: None)
    r = CliRunner().invoke(toy, ["toy"])
    assert r.exit_code == 130
    assert "interrupted: finished work is kept; run the same command again to resume" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_setting_added_later_keeps_old_keys_at_its_default():
    """keyed_if_set: entries written before the setting existed (at its default) keep their key."""

    @dataclasses.dataclass(frozen=True)
    class Old:
        a: int = setting(1, "a")

    @dataclasses.dataclass(frozen=True)
    class New:
        a: int = setting(1, "a")
        b: str = setting("x", "b", keyed_if_set=True)

    Old.__name__ = New.__name__ = "S"  # the key names the class: the same class, before and after
    assert settings_key("t", "1", New()) == settings_key("t", "1", Old())
    assert settings_key("t", "1", New(b="y")) != settings_key("t", "1", Old())
    assert result_fields(New()) == {"a": 1} and result_fields(New(b="y")) == {"a": 1, "b": "y"}
