"""Strategies and the `dmc train` / `dmc distill` commands on a tiny student saved to disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dmc.cli import app
from dmc.curriculum import parse_strategy
from dmc.curriculum.strategies import best_dataset


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def files(tmp_path, tiny_student_factory):
    st = tiny_student_factory("chatml")
    st.model.save_pretrained(tmp_path / "student")
    st.tokenizer.save_pretrained(tmp_path / "student")
    qs = [(i, 2 * i + 1) for i in range(10)]
    step = _write(tmp_path / "step.jsonl", [{"id": f"s{i}", "question": f"What is {a} + {b}?",
                                               "response": f"{a} + {b} = {a + b}. So {a + b} is the sum. The answer is {a + b}.",
                                               "gold": str(a + b)} for i, (a, b) in enumerate(qs)])
    terse = _write(tmp_path / "terse.jsonl", [{"id": f"t{i}", "question": f"What is {a} + {b}?",
                                                 "response": f"The answer is {a + b}.", "gold": str(a + b)}
                                                for i, (a, b) in enumerate(qs)])
    ev = _write(tmp_path / "eval.jsonl", [{"id": f"e{i}", "question": f"What is {i} + 3?", "gold": str(i + 3)} for i in range(4)])
    return {"student": tmp_path / "student", "step": step, "terse": terse, "eval": ev, "root": tmp_path}


def _common(files, out, steps=3):
    return ["--student", str(files["student"]), "--eval", str(files["eval"]), "--out", str(out), "--steps", str(steps),
            "--batch-size", "2", "--eval-max-new-tokens", "8", "--bf16", "off", "--cache", str(files["root"] / "cache")]


def _invoke(args):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output + repr(r.exception)
    return r


def test_strategy_names():
    assert parse_strategy("static:teacher-accuracy") == ("static-metric", "teacher_accuracy", None)
    assert parse_strategy("static:length:min") == ("static-metric", "length", "min")
    assert parse_strategy("dynamic-dmc") == ("dynamic-dmc", None, None)
    with pytest.raises(ValueError, match="unknown metric"):
        parse_strategy("static:perplexity")
    with pytest.raises(ValueError, match="unknown strategy"):
        parse_strategy("best")
    # direction follows the metric's declaration; NaN never wins
    assert best_dataset({"a": 0.2, "b": 0.5, "c": float("nan")}, "rsr")[0] == "a"  # lower is better
    assert best_dataset({"a": 0.2, "b": 0.5}, "dmc")[0] == "b"
    assert best_dataset({"a": 10.0, "b": 30.0}, "length")[0] == "b"
    assert best_dataset({"a": 10.0, "b": 30.0}, "length", "min")[0] == "a"
    with pytest.raises(ValueError, match="no candidate dataset has a dmc score"):
        best_dataset({"a": float("nan")}, "dmc")


def test_dmc_train_command(files):
    out = files["root"] / "run"
    args = ["train", str(files["step"])] + [a for a in _common(files, out) if a not in ("--cache", str(files["root"] / "cache"))]
    r = _invoke(args)
    assert "final evaluation" in r.output and "step 3/3  loss" in r.output
    assert (out / "model" / "model.safetensors").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 3 and metrics["final_eval"]["n"] == 4
    assert json.loads((out / "config.json").read_text())["data"]["rows"] == 10


def test_distill_static_metric_picks_by_direction(files):
    from dmc.scoring import score

    out = files["root"] / "len"
    _invoke(["distill", str(files["step"]), str(files["terse"]), "--strategy", "static:length"] + _common(files, out))
    info = json.loads((out / "strategy.json").read_text())
    assert info["chosen"] == "step"  # the longer traces (length has no direction: highest taken)
    lens = info["scores"]["length"]
    assert lens["step"] > lens["terse"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == "static:length"
    assert metrics["curriculum"]["rows_drawn"]["terse"] == 0 and metrics["curriculum"]["rows_drawn"]["step"] >= 6

    out2 = files["root"] / "rsr"
    _invoke(["distill", str(files["step"]), str(files["terse"]), "--strategy", "static:rsr"] + _common(files, out2))
    info2 = json.loads((out2 / "strategy.json").read_text())
    from dmc.students import load_student

    rep = score([files["step"], files["terse"]], load_student(files["student"], dtype="float32"), metrics=["rsr"],
                use_cache=False)
    rsr = dict(zip(rep.datasets["dataset"], rep.datasets["rsr"]))
    assert info2["chosen"] == min(rsr, key=rsr.get)  # RSR: lower is better
    assert info2["scores"]["rsr"] == pytest.approx(rsr)


def test_distill_dmc_mix_uniform_and_random(files):
    out = files["root"] / "mix"
    _invoke(["distill", str(files["step"]), str(files["terse"]), "--strategy", "static-dmc-mix", "--mix-policy", "softmax:0.1"]
            + _common(files, out))
    info = json.loads((out / "strategy.json").read_text())
    d = info["scores"]["dmc"]
    e = np.exp(np.array([d["step"], d["terse"]]) / 0.1)
    assert [info["mixture"]["step"], info["mixture"]["terse"]] == pytest.approx((e / e.sum()).tolist())
    assert info["scoring"]["metric"]["budget"] == 8  # scored at the evaluation's generation budget
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "mixture" and log[0]["mixture"] == pytest.approx(info["mixture"])

    out_u = files["root"] / "uni"
    _invoke(["distill", str(files["step"]), str(files["terse"]), "--strategy", "uniform"] + _common(files, out_u, steps=6))
    drawn = json.loads((out_u / "metrics.json").read_text())["curriculum"]["rows_drawn"]
    assert drawn["step"] > 0 and drawn["terse"] > 0

    out_r = files["root"] / "rnd"
    _invoke(["distill", str(files["step"]), str(files["terse"]), "--strategy", "random-dataset"] + _common(files, out_r))
    chosen = json.loads((out_r / "strategy.json").read_text())["chosen"]
    drawn = json.loads((out_r / "metrics.json").read_text())["curriculum"]["rows_drawn"]
    assert drawn[chosen] > 0 and sum(drawn.values()) == drawn[chosen]


def test_distill_dynamic_logs_rescores(files):
    out = files["root"] / "dyn"
    _invoke(["distill", str(files["step"]), str(files["terse"]), "--strategy", "dynamic-dmc", "--rescore-every", "2",
             "--probe-size", "4", "--policy", "softmax"] + _common(files, out, steps=4))
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    rescores = [e for e in log if e["event"] == "rescore"]
    assert [e["step"] for e in rescores] == [0, 2]
    assert all(set(e["scores"]) == {"step", "terse"} and set(e["mixture"]) == {"step", "terse"} for e in rescores)
    # step 0 takes DMC over the whole datasets on the untouched student (as static-dmc); step 2 re-scores probes
    full = json.loads((out / "strategy.json").read_text())["scores"]["dmc"]
    assert rescores[0]["source"] == "initial_scores" and rescores[0]["scores"] == pytest.approx(full)
    assert "source" not in rescores[1]
    cur = json.loads((out / "metrics.json").read_text())["curriculum"]
    assert cur["kind"] == "dynamic" and cur["n_rescores"] == 1 and 0 < cur["rescore_fraction_of_train"]


def test_distill_rejects_bad_input(files):
    r = CliRunner().invoke(app, ["distill", str(files["step"]), "--strategy", "best"] + _common(files, files["root"] / "x"))
    assert r.exit_code == 2 and "unknown strategy" in r.output
    r = CliRunner().invoke(app, ["distill", str(files["step"]), "--policy", "greedy"] + _common(files, files["root"] / "y"))
    assert r.exit_code == 2 and "unknown mixture policy" in r.output
