"""`dmc lab build` / `dmc lab list` from the command line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dmc.cli import app

runner = CliRunner()


def test_lab_build_writes_the_pool_and_eval(tmp_path):
    out = tmp_path / "lab"
    r = runner.invoke(app, ["lab", "build", "--out", str(out), "--task", "arith", "--n", "6", "--n-eval", "5",
                            "--seed", "3"])
    assert r.exit_code == 0, r.output
    pool = sorted(p.stem for p in (out / "arith" / "pool").glob("*.jsonl"))
    assert len(pool) >= 8 and "stepwise" in pool
    assert not (out / "listops").exists()
    rows = [json.loads(l) for l in (out / "arith" / "pool" / "stepwise.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and rows[0]["response"].rstrip().splitlines()[-1].startswith("The answer is")
    assert len((out / "arith" / "eval.jsonl").read_text().splitlines()) == 5
    assert json.loads((out / "lab.json").read_text())["seed"] == 3


def test_lab_build_rejects_unknown_task(tmp_path):
    r = runner.invoke(app, ["lab", "build", "--out", str(tmp_path), "--task", "chess"])
    assert r.exit_code != 0
    assert "chess" in r.output and not list(tmp_path.iterdir())


def test_lab_list_names_families_pool_and_students():
    r = runner.invoke(app, ["lab", "list"])
    assert r.exit_code == 0, r.output
    for word in ("family arith", "family listops", "noisy30", "teacher terse", "student lab-small", "student lab-base"):
        assert word in r.output
