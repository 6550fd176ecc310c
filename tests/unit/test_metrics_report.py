"""ScoreReport files: round trip, strict JSON, stamps in every file, and the rich table."""

from __future__ import annotations

import json
import math
import platform

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import transformers
from rich.console import Console
from test_metrics import _dmc_pool
from test_metrics_helpers import FakeGrader, pool

from dmc.metrics import MetricSettings, ScoreReport, score_tables


@pytest.fixture
def report() -> ScoreReport:
    s, toks, att = _dmc_pool()
    return score_tables(pool(*s), toks, att, grader=FakeGrader(),
                        meta={"student": {"name": "tiny", "fingerprint": "fp-123"}})


def _strict(text: str):
    def bad(c):
        raise ValueError(f"non-standard JSON constant {c}")
    return json.loads(text, parse_constant=bad)


def test_write_read_round_trip(tmp_path, report):
    paths = report.write(tmp_path)
    assert {p.name for p in paths.values()} == {"samples.parquet", "datasets.json", "datasets.csv"}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    back = ScoreReport.read(tmp_path)
    pd.testing.assert_series_equal(back.datasets["dmc"], report.datasets["dmc"], check_names=False)
    assert list(back.datasets["dataset"]) == list(report.datasets["dataset"])
    # dmc_v2 reads the answers table by default (capability likelihood), which this fixture lacks
    assert back.datasets.loc[1, "nan_reasons"] == {"dmc": {"no gold": 1},
                                                   "dmc_v2": {"no gold": 1, "no answer likelihoods (dmc.stats.answers)": 1},
                                                   "ifd": {"no question-free pass": 2},
                                                   "ifd_ppl": {"no question-free pass": 2},
                                                   "teacher_accuracy": {"no gold": 1}}
    assert back.samples["m"].equals(report.samples["m"])
    assert back.meta["student"]["fingerprint"] == "fp-123"


def test_every_file_is_stamped(tmp_path, report):
    report.write(tmp_path)
    doc = _strict((tmp_path / "datasets.json").read_text())  # NaN written as null
    assert doc["meta"]["metrics"]["dmc"]["version"] == "dmc-v1.3"
    assert doc["meta"]["metrics"]["rsr"]["direction"] == "lower"
    assert doc["meta"]["settings"]["epsilon"] == 1.0 and doc["meta"]["settings"]["sigma"] == 0.25
    assert doc["datasets"][0]["ifd"] is None
    pmeta = json.loads(pq.read_schema(tmp_path / "samples.parquet").metadata[b"dmc"])
    assert pmeta["student"]["fingerprint"] == "fp-123" and pmeta["metrics"]["ifd"]["version"] == "ifd-v2"
    # the installed versions a result may depend on (the dependencies are ranges)
    assert doc["meta"]["environment"]["torch"] == torch.__version__
    assert doc["meta"]["environment"]["transformers"] == transformers.__version__
    assert doc["meta"]["environment"]["python"] == platform.python_version()
    csv = pd.read_csv(tmp_path / "datasets.csv")
    assert set(csv["student_fingerprint"]) == {"fp-123"}
    assert json.loads(csv.loc[0, "metric_versions"])["dmc"] == "dmc-v1.3"
    assert json.loads(csv.loc[0, "settings"])["content"] == "decisions"
    assert csv.loc[0, "dmc"] == pytest.approx(report.datasets.loc[0, "dmc"])


def test_read_names_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="datasets.json"):
        ScoreReport.read(tmp_path)


def test_table_rows_sorted_and_footer(report):
    con = Console(width=200, record=True)
    con.print(report.table())
    text = con.export_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("│")]
    assert lines[0].split("│")[1].strip() == "X" and lines[1].split("│")[1].strip() == "Y"
    x = report.datasets.iloc[0]
    assert f"{x['dmc']:.3f} [{x['dmc_lo']:.3f}, {x['dmc_hi']:.3f}]" in lines[0]
    assert "dmc (dmc-v1.3): higher is better, range [0, 1]" in text
    assert "rsr (rsr-v1): lower is better" in text
    assert "Y: dmc: no gold ×1" in text
    assert "fp-123" in text
    assert not math.isnan(x["dmc"])


def test_table_shows_dmc_v2_alone_sorted_by_it():
    s, toks, att = _dmc_pool()
    st = MetricSettings(content="numbers", capability="attempts", n_boot=50)
    rep = score_tables(pool(*s), toks, att, metrics=["dmc_v2"], settings=st, grader=FakeGrader())
    assert list(rep.datasets["dmc_v2"]) == sorted(rep.datasets["dmc_v2"], reverse=True)
    con = Console(width=200, record=True)
    con.print(rep.table())
    text = con.export_text()
    top = rep.datasets.iloc[0]
    assert "dmc_v2 [CI]" in text and "A_v2" in text
    assert f"{top['dmc_v2']:.3f} [{top['dmc_v2_lo']:.3f}, {top['dmc_v2_hi']:.3f}]" in text
