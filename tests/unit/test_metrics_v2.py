"""DMC v2 (log-odds difficulty match) against hand-computed values on hand-built tables."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from test_metrics_helpers import FakeGrader, attempts_table, pool, sample, token_row, tokens_table

from dmc.metrics import METRICS, MetricSettings, difficulty_match, score_tables
from dmc.metrics.dmc_v2 import difficulty_match_logit, logit, shrunk_rate

# the hand-computed values below follow the numbers content selector (novel numbers), pass rates and
# top-1 alignment (v2.2's capability and alignment; the defaults are tested on their own below)
NUMBERS = MetricSettings(content="numbers", capability="attempts", alignment="rank")


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_shrunk_rate_and_logit():
    assert shrunk_rate(0.0, 64, 0.5) == pytest.approx(0.5 / 65)
    assert shrunk_rate(1.0, 1, 0.5) == pytest.approx(0.75)
    assert float(logit(0.5)) == 0.0
    assert float(logit(0.75)) == pytest.approx(math.log(3))
    assert np.isnan(shrunk_rate(np.nan, 4, 0.5))


def test_logit_match_is_invariant_to_student_ability():
    """A Rasch difficulty gap gives the same R2 for a weak and a strong student; v1's R does not."""
    gap = 1.5  # D's questions are 1.5 logits harder than the target's
    n = 1e9    # no shrinkage
    r2, r1 = [], []
    for ability in (-2.5, 0.0):
        c_t, c_d = _sig(ability), _sig(ability - gap)
        r2.append(float(difficulty_match_logit(c_d, n, c_t, n, 1.0, 0.5)))
        r1.append(float(difficulty_match(c_d, c_t, 0.15)))
    assert r2[0] == pytest.approx(math.exp(-gap**2 / 2), rel=1e-6)
    assert r2[1] == pytest.approx(r2[0], rel=1e-6)
    assert r1[0] > 0.8 and r1[1] < 0.2  # the pass-rate match forgives the gap for the weak student


def _pool():
    """X answers easy questions (all passed), Y hard ones (all failed); target: 1 pass out of 4."""
    xs = [sample("X", str(k), f"Compute {k} + 1.", f"{k} + 1 = {k + 1}\nThe answer is {k + 1}.", str(k + 1))
          for k in (1, 2)]
    ys = [sample("Y", str(k), f"Compute {k} + 50.", f"{k} + 50 = {k + 50}\nThe answer is {k + 50}.", str(k + 50))
          for k in (3, 4)]
    rows = [token_row(s) for s in xs] + [token_row(ys[0], rank_of={"53": 2}), token_row(ys[1])]
    targets = [f"t{i}" for i in range(4)]
    grades = {s.question_hash: ["correct"] for s in xs} | {s.question_hash: ["wrong"] for s in ys}
    grades |= {"t0": ["correct"], "t1": ["wrong"], "t2": ["wrong"], "t3": ["wrong"]}
    return xs + ys, tokens_table(rows), attempts_table(grades), targets


def test_dmc_v2_hand_computed():
    s, toks, att, targets = _pool()
    st = replace(NUMBERS, epsilon=0.3, sigma_logit=1.0, prior=0.5, match_side="both", n_boot=0)
    rep = score_tables(pool(*s), toks, att, metrics=["dmc_v2"], settings=st, target_questions=targets,
                       grader=FakeGrader())
    d = rep.datasets.set_index("dataset")
    lt = math.log((0.25 * 4 + 0.5) / (4 + 1) / (1 - (0.25 * 4 + 0.5) / (4 + 1)))  # logit(0.3)
    lx = math.log(2.5 / 3 / (1 - 2.5 / 3))  # C~_X = (2 + .5) / 3
    ly = math.log(0.5 / 3 / (1 - 0.5 / 3))  # C~_Y = .5 / 3
    assert d.loc["X", "logit_gap"] == pytest.approx(lx - lt)
    assert d.loc["Y", "logit_gap"] == pytest.approx(ly - lt)
    assert d.loc["X", "R2"] == pytest.approx(math.exp(-((lx - lt) ** 2) / 2))
    # all traces correct (w = 1); Y's first trace has its one novel number (53) at rank 2: A = 0
    assert d.loc["X", "dmc_v2"] == pytest.approx(math.exp(-((lx - lt) ** 2) / 2) * 1.0)
    assert d.loc["Y", "dmc_v2"] == pytest.approx(math.exp(-((ly - lt) ** 2) / 2) * (0.0 + 1.0) / 2)
    m = rep.samples.set_index(["dataset", "sample_id"])
    # per sample: c_i = 1 over one attempt, shrunk to .75
    assert m.loc[("X", "1"), "m_v2"] == pytest.approx(math.exp(-((math.log(3) - lt) ** 2) / 2))
    assert rep.meta["metrics"]["dmc_v2"]["version"] == "dmc-v2.4"
    assert rep.meta["settings"]["sigma_logit"] == 1.0 and rep.meta["settings"]["prior"] == 0.5


def test_dmc_v2_default_alignment_is_the_content_probability_and_v1_keeps_ranks():
    s, toks, att, targets = _pool()
    # Y's first trace: its one novel number (53) at rank 2 with probability 0.25; every other token
    # of the pool at rank 1 with probability exp(-1)
    toks = toks.copy()
    lp = [math.log(0.25) if tok == "53" else -1.0
          for tok in (s[2].response[a:b] for a, b in zip(toks.at[2, "char_start"], toks.at[2, "char_end"]))]
    toks.at[2, "logprob"] = lp
    st = MetricSettings(content="numbers", capability="attempts", n_boot=0)  # alignment: the default
    assert st.alignment == "prob"
    rep = score_tables(pool(*s), toks, att, metrics=["dmc", "dmc_v2"], settings=st, target_questions=targets,
                       grader=FakeGrader())
    d = rep.datasets.set_index("dataset")
    e = math.exp(-1)
    assert d.loc["X", "A_v2"] == pytest.approx(e) and d.loc["Y", "A_v2"] == pytest.approx((0.25 + e) / 2)
    assert d.loc["Y", "dmc_v2"] == pytest.approx(d.loc["Y", "R2"] * (0.25 + e) / 2)
    # v1 is DESIGN.md §3's top-k alignment whatever the setting: Y = R * (0 + 1) / 2
    assert d.loc["Y", "A"] == pytest.approx(0.5) and d.loc["Y", "dmc"] == pytest.approx(d.loc["Y", "R"] * 0.5)
    rank = score_tables(pool(*s), toks, att, metrics=["dmc_v2"], grader=FakeGrader(), target_questions=targets,
                        settings=replace(NUMBERS, n_boot=0))
    assert rank.datasets.set_index("dataset").loc["Y", "dmc_v2"] == pytest.approx(d.loc["Y", "R2"] * 0.5)


def test_dmc_v2_ci_brackets_point_and_nan_without_attempts():
    s, toks, att, targets = _pool()
    rep = score_tables(pool(*s), toks, att, metrics=["dmc_v2"], target_questions=targets, grader=FakeGrader(),
                       settings=replace(NUMBERS, n_boot=200))
    d = rep.datasets.set_index("dataset")
    for name in ("X", "Y"):
        assert d.loc[name, "dmc_v2_lo"] <= d.loc[name, "dmc_v2"] + 1e-12 <= d.loc[name, "dmc_v2_hi"] + 2e-12
    rep = score_tables(pool(*s), toks, None, metrics=["dmc_v2"], grader=FakeGrader(), settings=NUMBERS)
    d = rep.datasets.set_index("dataset")
    assert d["dmc_v2"].isna().all()
    assert d.loc["X", "reasons"]["dmc_v2"].startswith("C_T: no capability")


def test_dmc_v2_registered_and_v1_kept():
    assert METRICS["dmc"].version == "dmc-v1.3" and METRICS["dmc_v2"].version == "dmc-v2.4"
    assert METRICS["dmc_v2"].direction == "higher" and METRICS["dmc_v2"].range == (0.0, 1.0)


@pytest.mark.parametrize("field,value", [("sigma_logit", 0.0), ("prior", 0.0), ("sigma_logit", -1.0)])
def test_v2_settings_validation(field, value):
    with pytest.raises(ValueError, match=field):
        MetricSettings(**{field: value})


def test_one_sided_match_spares_harder_sets_only():
    s, toks, att, targets = _pool()
    both = score_tables(pool(*s), toks, att, metrics=["dmc_v2"], target_questions=targets, grader=FakeGrader(),
                        settings=replace(NUMBERS, n_boot=0, match_side="both")).datasets.set_index("dataset")
    easier = score_tables(pool(*s), toks, att, metrics=["dmc_v2"], target_questions=targets, grader=FakeGrader(),
                          settings=replace(NUMBERS, n_boot=0, match_side="easier")).datasets.set_index("dataset")
    assert both.loc["Y", "logit_gap"] < 0 < both.loc["X", "logit_gap"]  # Y harder, X easier than the target
    assert both.loc["Y", "R2"] < 1.0 and easier.loc["Y", "R2"] == 1.0
    assert easier.loc["Y", "dmc_v2"] == pytest.approx(0.5)  # mean w*A alone
    assert easier.loc["X", "R2"] == pytest.approx(both.loc["X", "R2"])
    with pytest.raises(ValueError, match="match_side"):
        replace(NUMBERS, match_side="harder")
