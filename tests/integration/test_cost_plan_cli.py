"""`dmc score` prints its cost plan on stderr before the work, unless --no-progress."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dmc.cli import app


def test_score_prints_the_plan_and_no_progress_silences_it(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "response": f"{i} + 1 = {i + 1}.",
                                        "gold": str(i + 1)}) + "\n" for i in range(3)))
    base = ["score", str(data), "--student", "lab-small", "--metrics", "dmc", "--n-boot", "0",
            "--attempt-max-new-tokens", "4"]
    r = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "a")], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "token statistics: 3 samples to score (0 cached)" in r.output
    assert "student attempts: 3 questions (0 cached) x k=1 x 4 new tokens = at most 12 generated tokens" in r.output
    assert "estimate ≈" in r.output
    quiet = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "b"), "--no-progress"], env={"COLUMNS": "200"})
    assert quiet.exit_code == 0 and "samples to score" not in quiet.output and "estimate" not in quiet.output
