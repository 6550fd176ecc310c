"""A trace cut at the scoring max_length is never silent: it is counted per dataset, its alignment
is NaN with its own reason, and the default budget is the student's whole context."""

from __future__ import annotations

import math

from test_metrics_helpers import FakeGrader, attempts_table, pool, sample, token_row, tokens_table

from dmc.metrics import MetricSettings, score_tables
from dmc.metrics.context import TRUNCATED
from dmc.stats import TokenStatsSettings, compute_token_stats


def _report():
    a = [sample("A", f"a{i}", f"What is {i} + 2?", f"{i} + 2 = {i + 2}. The answer is {i + 2}.", str(i + 2))
         for i in range(3)]
    b = [sample("B", f"b{i}", f"What is {i} + 2?", f"Adding: {i} + 2 = {i + 2}. The answer is {i + 2}.", str(i + 2))
         for i in range(3)]
    rows = [token_row(s) for s in a] + [token_row(s, truncated=(i < 2)) for i, s in enumerate(b)]
    attempts = attempts_table({s.question_hash: ["correct"] for s in a})
    return score_tables(pool(*a, *b), tokens_table(rows), attempts, metrics=["dmc"],
                        settings=MetricSettings(n_boot=0), grader=FakeGrader())


def test_cut_traces_are_counted_and_get_their_own_reason():
    rep = _report()
    d = rep.datasets.set_index("dataset")
    assert d.loc["A", "n_truncated"] == 0 and d.loc["B", "n_truncated"] == 2
    assert d.loc["B", "nan_reasons"]["dmc"] == {TRUNCATED: 2}
    s = rep.samples.set_index("sample_id")
    assert s.loc["b0", "m_reason"] == TRUNCATED and math.isnan(s.loc["b0", "m"])
    assert not math.isnan(s.loc["b2", "m"]) and d.loc["B", "n_scored"] == 1
    assert "no content tokens" not in str(d.loc["B", "nan_reasons"])


def test_the_default_budget_is_the_students_context(tiny_student):
    assert TokenStatsSettings().max_length is None
    long = sample("L", "l0", "Count.", " ".join(str(i) for i in range(400)) + " The answer is 399.", "399")
    ctx = tiny_student.context_length
    assert ctx > 1
    t = compute_token_stats(tiny_student, [long], TokenStatsSettings(), cache=None, progress=False)
    cut = compute_token_stats(tiny_student, [long], TokenStatsSettings(max_length=64), cache=None, progress=False)
    assert bool(cut["truncated"].iloc[0]) and int(cut["n_tokens"].iloc[0]) < int(t["n_tokens"].iloc[0])
    assert bool(t["truncated"].iloc[0]) == (int(t["n_tokens"].iloc[0]) + 8 >= ctx)
