"""The report's dataset table shows how many traces of each dataset the scoring cut."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dmc.report.load import RunResults
from dmc.report.tables import dataset_table


def _run(**extra) -> RunResults:
    scores = pd.DataFrame({"dataset": ["a", "b"], "dmc": [0.5, float("nan")], "length": [10.0, 900.0], **extra})
    return RunResults(Path("."), scores=scores, scores_meta={"metrics": {"dmc": {"direction": "higher"}}})


def test_dataset_table_shows_truncation_counts():
    t = dataset_table(_run(n_truncated=[0, 3]))
    assert t is not None and t.headers[-1] == "truncated"
    assert {r[0]: r[-1] for r in t.rows} == {"a": "0", "b": "3"}
    assert any("truncated" in n for n in t.notes)
    assert "| 3 |" in t.to_markdown()


def test_dataset_table_without_the_count_has_no_column():
    t = dataset_table(_run())
    assert t is not None and "truncated" not in t.headers and not any("truncated" in n for n in t.notes)
