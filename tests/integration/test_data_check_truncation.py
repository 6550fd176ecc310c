"""`dmc data check --student`: the traces the student's scoring would cut, per dataset."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dmc.cli import app


def _write(path, responses):
    path.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "response": r, "gold": str(i + 1)}) + "\n"
                            for i, r in enumerate(responses)))


def test_check_counts_the_traces_the_scoring_max_length_cuts(tmp_path):
    _write(tmp_path / "short.jsonl", [f"The answer is {i + 1}." for i in range(3)])
    _write(tmp_path / "long.jsonl", [" ".join(["1 + 1 = 2."] * (40 if i < 2 else 1)) + f" The answer is {i + 1}."
                                     for i in range(3)])
    args = ["data", "check", str(tmp_path / "short.jsonl"), str(tmp_path / "long.jsonl")]
    r = CliRunner().invoke(app, [*args, "--student", "lab-small", "--score-max-length", "64"],
                           env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    rows = {line.split("│")[1].strip(): line.split("│")[-2].strip() for line in r.output.splitlines()
            if line.startswith("│")}
    assert rows == {"short": "0", "long": "2"}
    assert "truncated at 64" in r.output and "2 traces are longer than 64 tokens" in r.output
    plain = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert plain.exit_code == 0 and "truncated" not in plain.output


def test_check_with_an_unknown_student_is_one_error_line(tmp_path):
    _write(tmp_path / "d.jsonl", ["The answer is 1."])
    r = CliRunner().invoke(app, ["data", "check", str(tmp_path / "d.jsonl"), "--student", str(tmp_path / "nope")])
    assert r.exit_code != 0 and r.output.strip().startswith("error:") and len(r.output.strip().splitlines()) == 1
