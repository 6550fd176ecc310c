"""Capability from the student's likelihood of the gold answer (dmc.stats.answers, capability="likelihood")."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_metrics_helpers import FakeGrader, attempts_table, pool, sample, token_row, tokens_table

from dmc.data.schema import EvalItem
from dmc.metrics import METRICS, MetricSettings, score_tables
from dmc.scoring import ScoringSettings
from dmc.stats.answers import ANSWER_CUE, answer_probes, answers_table, gold_logprob


def _probe_row(probe, gold_lp: list[float], *, truncated=False):
    """A tokens row of an answer probe: one token per character of the cue, then one per gold token."""
    cue = len(ANSWER_CUE)
    gold = probe.response[cue:-1]
    spans = [(i, i + 1) for i in range(cue)]
    per = max(1, len(gold) // len(gold_lp))
    for k in range(len(gold_lp)):
        spans.append((cue + k * per, cue + (len(gold) if k == len(gold_lp) - 1 else (k + 1) * per)))
    spans.append((len(probe.response) - 1, len(probe.response)))  # the closing period
    lps = [-0.01] * cue + gold_lp + [-0.5]
    return {"sample_hash": probe.hash, "question_hash": probe.question_hash, "truncated": truncated,
            "logprob": lps, "rank": [1] * len(lps), "char_start": [a for a, _ in spans],
            "char_end": [b for _, b in spans], "n_tokens": len(lps)}


def test_probes_one_per_question_with_gold_and_the_questions_hash():
    a = sample("A", "1", "Compute 2 + 3.", "2 + 3 = 5\nThe answer is 5.", "5")
    b = sample("B", "1", "Compute 2 + 3.", "5.", "5")  # the same question in another dataset
    c = sample("B", "2", "Name a colour.", "Red.", None)
    e = EvalItem("e1", ({"role": "user", "content": "Compute 1 + 1."},), " 2 ")
    probes = answer_probes([a, b, c, e])
    assert [p.question_hash for p in probes] == [a.question_hash, e.question_hash]
    assert probes[0].response == "The answer is 5." and probes[1].response == "The answer is 2."
    assert probes[0].prompt == a.prompt


def test_gold_logprob_sums_the_gold_tokens_only():
    lo = len(ANSWER_CUE)
    cs = np.array([0, 4, lo, lo + 2, lo + 4])
    ce = np.array([4, lo, lo + 2, lo + 4, lo + 5])
    lp = np.array([-9.0, -9.0, -1.0, -2.0, -7.0])  # cue, cue, gold, gold, "."
    assert gold_logprob(lp, cs, ce, "1234") == (-3.0, 2)


def test_answers_table_reasons():
    q1 = sample("A", "1", "Compute 2 + 3.", "x", "5")
    q2 = sample("A", "2", "Compute 20 + 30.", "x", "50")
    q3 = sample("A", "3", "Compute 7 + 1.", "x", "8")
    q4 = sample("A", "4", "Say hi.", "x", None)
    p1, p2, p3 = answer_probes([q1, q2, q3])
    rows = pd.DataFrame([_probe_row(p1, [-0.7]), _probe_row(p2, [-1.0, -2.0]), _probe_row(p3, [-1.0], truncated=True)])
    t = answers_table([q1, q2, q3, q4, sample("B", "9", "Unscored?", "x", "1")], rows).set_index("question_hash")
    assert t.loc[q1.question_hash, "gold_logprob"] == pytest.approx(-0.7)
    assert t.loc[q2.question_hash, "gold_logprob"] == pytest.approx(-3.0)
    assert t.loc[q2.question_hash, "n_gold_tokens"] == 2
    assert np.isnan(t.loc[q3.question_hash, "gold_logprob"]) and "max_length" in t.loc[q3.question_hash, "reason"]
    assert t.loc[q4.question_hash, "reason"] == "no gold"
    assert t["reason"].str.contains("no answer-probe statistics").sum() == 1


def _pool():
    """X answers questions the student nearly knows; Y questions it does not; the targets sit between."""
    xs = [sample("X", str(k), f"Compute {k} + 1.", f"{k} + 1 = {k + 1}\nThe answer is {k + 1}.", str(k + 1))
          for k in (1, 2)]
    ys = [sample("Y", str(k), f"Compute {k} + 50.", f"{k} + 50 = {k + 50}\nThe answer is {k + 50}.", str(k + 50))
          for k in (3, 4)]
    ts = [EvalItem(f"t{k}", ({"role": "user", "content": f"Compute {k} + 9."},), str(k + 9)) for k in (5, 6)]
    probes = answer_probes([*xs, *ys, *ts])
    gold_lp = {**{p.question_hash: [math.log(0.5)] for p in probes[:2]},           # X: p = 1/2, logit 0
               **{p.question_hash: [math.log(0.01)] for p in probes[2:4]},        # Y: logit(0.01)
               probes[4].question_hash: [math.log(0.2)], probes[5].question_hash: [math.log(0.1)]}
    answers = answers_table([*xs, *ys, *ts], pd.DataFrame([_probe_row(p, gold_lp[p.question_hash]) for p in probes]))
    return [*xs, *ys], tokens_table([token_row(s) for s in [*xs, *ys]]), answers, [t.question_hash for t in ts]


def _logit(p):
    return math.log(p / (1 - p))


def test_dmc_v2_likelihood_hand_computed_and_needs_no_attempts():
    s, toks, answers, targets = _pool()
    st = MetricSettings(content="numbers", capability="likelihood", alignment="rank", sigma_logit=1.0, n_boot=0)
    rep = score_tables(pool(*s), toks, None, metrics=["dmc_v2"], settings=st, target_questions=targets,
                       grader=FakeGrader(), answers=answers)
    d = rep.datasets.set_index("dataset")
    z_t = (_logit(0.2) + _logit(0.1)) / 2
    assert d.loc["X", "logit_gap"] == pytest.approx(0.0 - z_t)
    assert d.loc["Y", "logit_gap"] == pytest.approx(_logit(0.01) - z_t)
    # every trace correct and aligned (w = A = 1): DMC is R2 alone
    assert d.loc["X", "dmc_v2"] == pytest.approx(math.exp(-(z_t ** 2) / 2))
    assert d.loc["Y", "dmc_v2"] == pytest.approx(math.exp(-((_logit(0.01) - z_t) ** 2) / 2))
    m = rep.samples.set_index(["dataset", "sample_id"])
    assert m.loc[("Y", "3"), "m_v2"] == pytest.approx(d.loc["Y", "dmc_v2"])
    assert rep.meta["settings"]["capability"] == "likelihood"
    # what is computed follows the setting: no generated attempts for v2 under likelihood
    assert METRICS["dmc_v2"].needs_for(st) == {"tokens", "answers", "grades"}
    assert ScoringSettings(metrics=("dmc_v2",), metric=st).needs == {"tokens", "answers", "grades"}
    # the default (dmc-v2.3) generates nothing; pass rates are one setting away
    assert ScoringSettings(metrics=("dmc_v2",)).needs == {"tokens", "answers", "grades"}
    assert "attempts" in ScoringSettings(metrics=("dmc_v2",), metric=MetricSettings(capability="attempts")).needs


def test_likelihood_sees_a_gap_where_pass_rates_floor():
    """A weak student fails every attempt on both sets, so pass rates see no gap; the likelihood does."""
    s, toks, answers, targets = _pool()
    grades = {x.question_hash: ["wrong"] for x in s} | {t: ["wrong"] for t in targets}
    att = attempts_table(grades)
    by = {}
    for cap in ("attempts", "likelihood"):
        st = MetricSettings(content="numbers", capability=cap, alignment="rank", n_boot=200)
        by[cap] = score_tables(pool(*s), toks, att, metrics=["dmc_v2"], settings=st, target_questions=targets,
                               grader=FakeGrader(), answers=answers).datasets.set_index("dataset")
    assert by["attempts"].loc["X", "dmc_v2"] == pytest.approx(by["attempts"].loc["Y", "dmc_v2"])
    assert by["likelihood"].loc["Y", "dmc_v2"] < by["likelihood"].loc["X", "dmc_v2"] - 0.3
    d = by["likelihood"]
    for name in ("X", "Y"):
        assert d.loc[name, "dmc_v2_lo"] - 1e-12 <= d.loc[name, "dmc_v2"] <= d.loc[name, "dmc_v2_hi"] + 1e-12
        assert d.loc[name, "dmc_v2_se"] >= 0


def test_likelihood_without_the_answers_table_is_nan_with_a_reason():
    s, toks, _, targets = _pool()
    st = MetricSettings(content="numbers", capability="likelihood", n_boot=0)
    rep = score_tables(pool(*s), toks, None, metrics=["dmc_v2"], settings=st, target_questions=targets,
                       grader=FakeGrader())
    d = rep.datasets.set_index("dataset")
    assert d["dmc_v2"].isna().all()
    assert "no answer likelihoods" in d.loc["X", "reasons"]["dmc_v2"]
    assert rep.samples["m_v2_reason"].str.contains("no answer likelihoods").all()


def test_capability_setting_is_validated():
    with pytest.raises(ValueError, match="capability"):
        MetricSettings(capability="guess")
