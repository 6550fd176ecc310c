"""`dmc demo` end to end at a tiny scale: lab → scores → E1 → E3 → report → headline table."""

import json
import re

import pytest
import torch
from typer.testing import CliRunner

from dmc.cli.app import app
from dmc.lab import standard_pool
from dmc.students import tiny_student
from dmc import demo as demo_mod
from dmc.validation import files

TINY = demo_mod.DemoScale(n=4, n_eval=4, steps=1, batch_size=2, e3_steps=2, e3_eval_every=2, rescore_every=1,
                          probe_size=2, target_size=2, eval_max_new_tokens=6, attempts_max_new_tokens=6, n_boot=50)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("demo")
    st = tiny_student(seed=1)
    sdir = tmp / "student"
    st.model.save_pretrained(sdir)
    st.tokenizer.save_pretrained(sdir)
    mp = pytest.MonkeyPatch()
    mp.setitem(demo_mod.SCALES, "fast", TINY)
    try:
        res = CliRunner().invoke(app, ["demo", "--out", str(tmp / "demo"), "--fast", "--student", str(sdir),
                                       "--workers", "1", "--no-progress"])
    finally:
        mp.undo()
    return tmp, res


def test_demo_writes_everything_and_prints_the_headline(demo_run):
    tmp, res = demo_run
    assert res.exit_code == 0, res.output + repr(res.exception)
    out = tmp / "demo"
    lab = json.loads((out / "lab" / "lab.json").read_text())
    assert (lab["n"], lab["n_eval"]) == (4, 4) and list(lab["families"]) == ["listops"]
    run = out / "run"
    e1 = json.loads((run / files.E1_JSON).read_text())
    n_pool = len(standard_pool("listops"))
    assert len(e1["pilots"]) == n_pool and {p["status"] for p in e1["pilots"]} == {"done"}
    assert not (run / files.E2_JSON).exists()  # the demo runs E1 and E3
    e3 = json.loads((run / files.E3_JSON).read_text())
    assert list(e3["strategies"]) == ["uniform", "static-dmc", "dynamic-dmc"] and e3["steps"] == 2
    html = (out / "report" / "report.html").read_text()
    assert html.count('<img src="data:image/png;base64,') >= 5
    text = res.output
    # the headline: one row per pool dataset, the metrics as columns, and rho per metric
    for name in ("stepwise", "terse", "verbose", "noisy30", "easy-stepwise", "hard-stepwise"):
        assert name in text
    assert "post-training accuracy" in text and "Spearman" in text
    assert re.search(r"elapsed: \d+s", text)
    for m in e1["metrics"]:
        assert m in text


def test_demo_rerun_reuses_lab_and_pilots(demo_run, monkeypatch):
    tmp, _ = demo_run
    monkeypatch.setitem(demo_mod.SCALES, "fast", TINY)
    sdir = tmp / "student"
    res = demo_mod.run_demo(tmp / "demo", fast=True, student=str(sdir), workers=1, progress=False)
    assert {p["status"] for p in res.validation.e1["pilots"]} == {"cached"}
    assert list(res.table["dataset"])[0] == res.table.sort_values("accuracy", ascending=False)["dataset"].iloc[0]
    assert list(res.table.columns)[0] == "dataset" and list(res.table.columns)[-1] == "accuracy"
    assert len(res.table) == len(standard_pool("listops"))
    assert set(res.correlations["metric"]) == set(res.validation.e1["metrics"])
