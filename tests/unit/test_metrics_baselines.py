"""Baseline metrics and the registry, against hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from test_metrics_helpers import FakeGrader, attempts_table, pool, sample, token_row, tokens_table

from dmc.metrics import METRICS, Metric, MetricResult, MetricSettings, register, score_tables


def _two_samples():
    a = sample("d", "a", "Q one?", "so it is", "1")  # 3 toy tokens, no answer -> q = 0
    b = sample("d", "b", "Q two?", "ok go", "2")  # 2 toy tokens
    rows = [
        # the question-free pass has no prediction for the first token (NaN), as without a BOS
        token_row(a, rank=[1, 3, 200], logprob=[-0.5, -1.0, -2.5], logprob_noq=[float("nan"), -4.0, -4.0]),
        token_row(b, rank=[2, 2], logprob=[-1.0, -1.0]),
    ]
    return [a, b], tokens_table(rows)


def test_rsr_sample_and_dataset():
    s, toks = _two_samples()
    rep = score_tables(pool(*s), toks, None, metrics=["rsr"], grader=FakeGrader())
    per = rep.samples.set_index("sample_id")["rsr"]
    assert per["a"] == pytest.approx((1 + 3 + 100) / 4.0)  # rank capped at 100
    assert per["b"] == pytest.approx(4 / 2.0)
    mean_rank = (104 / 3 + 2) / 2
    mean_surprisal = (4.0 / 3 + 1.0) / 2
    assert rep.datasets.loc[0, "rsr"] == pytest.approx(mean_rank / mean_surprisal)
    assert METRICS["rsr"].direction == "lower"


def test_ifd_mean_logprob_length():
    s, toks = _two_samples()
    rep = score_tables(pool(*s), toks, None, metrics=["ifd", "mean_logprob", "length"], grader=FakeGrader())
    per = rep.samples.set_index("sample_id")
    # both means over the same tokens, all but the first: (1.0 + 2.5) / 2 over (4 + 4) / 2
    assert per.loc["a", "ifd"] == pytest.approx(1.75 / 4.0)
    assert math.isnan(per.loc["b", "ifd"]) and per.loc["b", "ifd_reason"] == "no question-free pass"
    assert per.loc["a", "mean_logprob"] == pytest.approx(-4.0 / 3)
    assert per.loc["b", "mean_logprob"] == pytest.approx(-1.0)
    assert per["length"].tolist() == [3.0, 2.0]
    d = rep.datasets.iloc[0]
    assert d["ifd"] == pytest.approx(1.75 / 4.0)  # mean over samples with a question-free pass
    assert d["mean_logprob"] == pytest.approx((-4.0 / 3 - 1.0) / 2)
    assert d["length"] == pytest.approx(2.5)
    assert d["nan_reasons"] == {"ifd": {"no question-free pass": 1}}
    assert METRICS["length"].direction == "none"


def test_teacher_accuracy_and_fail_rate_over_distinct_questions():
    q1, q2 = "Compute 5 + 6.", "Compute 7 + 8."
    s = [sample("d", "1", q1, "5 + 6 = 11\nThe answer is 11.", "11"),
         sample("d", "2", q1, "5 + 6 = 12\nThe answer is 12.", "11"),
         sample("d", "3", q2, "7 + 8 = 15\nThe answer is 15.", "15"),
         sample("d", "4", q2, "7 + 8 = 15\nThe answer is 15!", None)]
    att = attempts_table({s[0].question_hash: ["correct", "correct"], s[2].question_hash: ["wrong", "wrong"]})
    rep = score_tables(pool(*s), tokens_table([token_row(x) for x in s]), att,
                       metrics=["teacher_accuracy", "student_fail_rate"], grader=FakeGrader())
    d = rep.datasets.iloc[0]
    assert d["teacher_accuracy"] == pytest.approx(2 / 3)  # no-gold sample excluded, not counted as 0
    # questions: q1 (c=1), q2 (c=0), and the no-gold q2 variant (no attempts): (0 + 1) / 2
    assert d["student_fail_rate"] == pytest.approx(0.5)
    per = rep.samples.set_index("sample_id")
    assert per.loc["2", "student_fail_rate"] == 0.0 and per.loc["3", "student_fail_rate"] == 1.0
    assert per.loc["4", "student_fail_rate_reason"] == "no attempts"
    assert per.loc["4", "teacher_accuracy_reason"] == "no gold"


def test_random_seeded_order_independent():
    s, toks = _two_samples()
    r1 = score_tables(pool(*s), toks, metrics=["random"]).samples.set_index("sample_id")["random"]
    r2 = score_tables(pool(*reversed(s)), toks, metrics=["random"]).samples.set_index("sample_id")["random"]
    r3 = score_tables(pool(*s), toks, metrics=["random"], settings=MetricSettings(seed=1)).samples.set_index(
        "sample_id")["random"]
    assert r1.to_dict() == r2.to_dict()
    assert r1["a"] != r3["a"] and 0.0 <= r1.min() and r1.max() < 1.0
    d = score_tables(pool(*s), toks, metrics=["random"]).datasets.iloc[0]
    assert d["random"] == pytest.approx(r1.mean())


def test_registry_plugs_in_new_metric_and_validates():
    class NovelCount(Metric):
        name = "test_novel_count"
        version = "test-1"
        direction = "higher"
        range = (0.0, float("inf"))
        description = "content tokens per sample"
        needs = frozenset({"tokens"})

        def compute(self, ctx):
            n = ctx.alignment["n_content"].astype(float)
            dv = n.groupby(ctx.samples["dataset"]).sum()
            return MetricResult(n, pd.Series(None, index=n.index, dtype=object), dv, pd.Series(dtype=object))

    try:
        register(NovelCount)
        assert list(METRICS)[-1] == "test_novel_count"
        s = sample("d", "1", "Compute 3 + 4.", "3 + 4 = 7\nThe answer is 7.", "7")
        rep = score_tables(pool(s), tokens_table([token_row(s)]), metrics=["test_novel_count", "length"],
                           settings=MetricSettings(content="numbers"))
        assert rep.datasets.loc[0, "test_novel_count"] == 1.0
        assert rep.meta["metrics"]["test_novel_count"]["version"] == "test-1"
        assert "dmc" not in rep.datasets.columns  # only the chosen metrics run
    finally:
        METRICS.pop("test_novel_count", None)

    class BadDirection(NovelCount):
        name = "test_bad"
        direction = "up"

    with pytest.raises(ValueError, match="direction"):
        register(BadDirection)

    class Clash(NovelCount):
        name = "dmc"

    with pytest.raises(ValueError, match="already registered"):
        register(Clash)
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        score_tables(pool(s), None, metrics=["nope"])


def test_missing_table_columns_named():
    s = sample("d", "1", "Compute 3 + 4.", "3 + 4 = 7", "7")
    toks = tokens_table([token_row(s)]).drop(columns=["rank"])
    with pytest.raises(ValueError, match=r"tokens table lacks columns \['rank'\]"):
        score_tables(pool(s), toks, metrics=["length"])
    att = attempts_table({s.question_hash: ["correct"]}).drop(columns=["grade"])
    with pytest.raises(ValueError, match=r"attempts table lacks columns \['grade'\]"):
        score_tables(pool(s), None, att, metrics=["student_fail_rate"], settings=MetricSettings())
