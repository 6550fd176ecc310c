"""DMC v1 and its components against hand-computed values on small hand-built tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_metrics_helpers import FakeGrader, attempts_table, pool, sample, token_row, tokenize, tokens_table

from dmc.metrics import (
    MetricSettings,
    ScoringContext,
    bootstrap_replicates,
    content_token_mask,
    difficulty_match,
    find_spans,
    novel_spans,
    score_tables,
)

# the hand-computed values below follow the numbers content selector (novel numbers)
NUMBERS = MetricSettings(content="numbers")

# ------------------------------------------------------------------ content spans


def test_find_spans_numbers_and_math():
    got = [s for _, _, s in find_spans("x = -3, 5-3 = 2, 1,000 and 3/4 and 2.5")]
    assert got == ["-3", "5", "3", "2", "1000", "3/4", "2.5"]
    latex = r"\frac{1}{2} + \sqrt{3} + 2^{10} + \dfrac{a}{b}"
    assert [s for _, _, s in find_spans(latex)] == [r"\frac{1}{2}", r"\sqrt{3}", "2^{10}", r"\dfrac{a}{b}"]


def test_novel_spans_skip_question_and_repeats():
    q = "Compute 3 + 4 + 5."
    r = "3 + 4 = 7\n7 + 5 = 12\nThe answer is 12."
    # 3, 4, 5 are in the question; the second 7 and the final 12 are copies
    assert novel_spans(q, r) == [(8, 9), (18, 20)]
    assert [r[a:b] for a, b in novel_spans(q, r)] == ["7", "12"]
    # thousands separators do not make a number new
    assert novel_spans("Add 1000 and 1.", "1,000 + 1 = 1,001") == [(12, 17)]


def test_lists_and_tuples_of_numbers_are_one_expression():
    # every element of each list is in the question, but the lists themselves are derived results
    q = "Start with the list [5, 2, 4, 2]. Swap the first and last items. Append 5."
    r = "Start with [5, 2, 4, 2].\nswap ends: [2, 2, 4, 5]\nappend 5: [2,2,4,5, 5]\nThe answer is [2, 2, 4, 5, 5]."
    # a new list counts by its elements (brackets and commas are format): 2, 2, 4, 5 then 2, 2, 4, 5, 5
    assert [r[a:b] for a, b in novel_spans(q, r)] == ["2", "2", "4", "5"] + ["2", "2", "4", "5", "5"]
    assert novel_spans(q, r)[0] == (r.index("[2, 2, 4, 5]") + 1, r.index("[2, 2, 4, 5]") + 2)
    assert [r2[a:b] for r2 in ["now: []"] for a, b in novel_spans(q, r2)] == ["[]"]  # an empty list counts whole
    got = [s for _, _, s in find_spans("[] and [-1] and (3, -1) but (3) and f(2)")]
    assert got == ["[]", "[-1]", "(3,-1)", "3", "2"]
    # a LaTeX root index is not a list
    assert [s for _, _, s in find_spans(r"\sqrt[3]{8}")] == [r"\sqrt[3]{8}"]


def test_novel_spans_words_case_insensitive():
    q = "Add two and three."
    r = "Two plus three is five"
    assert [r[a:b] for a, b in novel_spans(q, r, "words")] == ["plus", "is", "five"]
    with pytest.raises(ValueError, match="content selector"):
        novel_spans(q, r, "tokens")


def test_content_token_mask_overlap_rules():
    q, r = "Compute 3 + 4 + 5.", "3 + 4 = 7\n7 + 5 = 12\nThe answer is 12."
    cs = [8, 10, 17, 18, 20, 19]
    ce = [9, 11, 19, 19, 20, 21]
    # (8,9) is the novel 7; (10,11) the copied 7; (17,19) and (18,19) overlap "12" at (18,20);
    # (20,20) is zero-width; (19,21) overlaps the last char of "12"
    assert content_token_mask(q, r, cs, ce).tolist() == [True, False, True, True, False, True]
    assert content_token_mask(q, r, cs, ce, "all").tolist() == [True] * 6
    with pytest.raises(ValueError, match="differ in length"):
        content_token_mask(q, r, [0, 1], [1])


def test_content_token_masks_are_memoized_read_only_and_keyed_by_every_input():
    q, r = "Compute 3 + 4 + 5.", "3 + 4 = 7\n7 + 5 = 12\nThe answer is 12."
    cs, ce = [8, 10, 17, 18, 20, 19], [9, 11, 19, 19, 20, 21]
    first = content_token_mask(q, r, cs, ce, "decisions")
    assert content_token_mask(q, r, np.asarray(cs), np.asarray(ce), "decisions") is first
    with pytest.raises(ValueError, match="read-only"):
        first[0] = not first[0]
    # another selector, other offsets, other boilerplate: another mask, not the memoized one
    assert content_token_mask(q, r, cs, ce, "numbers").tolist() == [True, False, True, True, False, True]
    assert content_token_mask(q, r, [8, 10], [9, 11], "decisions").tolist() == first[:2].tolist()
    fmt = content_token_mask(q, r, [22, 26], [25, 32], "decisions", boilerplate=frozenset({"the", "answer"}))
    assert fmt.tolist() == [False, False]
    assert content_token_mask(q, r, [22, 26], [25, 32], "decisions").tolist() == [True, True]


# ------------------------------------------------------------------ alignment A_i

Q = "Compute 3 + 4 + 5."
R_TEXT = "3 + 4 = 7\n7 + 5 = 12\nThe answer is 12."


def _ctx(samples, rows=None, attempts=None, **settings):
    toks = tokens_table(rows) if rows is not None else None
    return ScoringContext(pool(*samples), toks, attempts, MetricSettings(**{"content": "numbers", **settings}), grader=FakeGrader())


def test_alignment_top_k_and_selectors():
    s = sample("d", "1", Q, R_TEXT, "12")
    row = token_row(s, rank_of={"7": 1, "12": 2})
    al = _ctx([s], [row]).alignment.iloc[0]
    assert al["n_content"] == 2 and al["A"] == pytest.approx(0.5)
    assert _ctx([s], [row], top_k=2).alignment.iloc[0]["A"] == pytest.approx(1.0)
    # all 15 toy tokens count; both "12" tokens have rank 2
    al_all = _ctx([s], [row], content="all").alignment.iloc[0]
    assert al_all["n_content"] == 15 and al_all["A"] == pytest.approx(13 / 15)


def test_alignment_prob_is_the_mean_probability_of_the_content_tokens():
    s = sample("d", "1", Q, R_TEXT, "12")
    spans = [s.response[a:b] for a, b in tokenize(s.response)]
    # the novel 7 and 12 (one token each here) get probabilities 0.5 and 0.1; every other token 0.9
    p_of = {"7": 0.5, "12": 0.1}
    lp = [math.log(p_of.get(t, 0.9)) for t in spans]
    rk = [1 if t not in p_of else 3 for t in spans]  # both content tokens out of the top 1
    al = _ctx([s], [token_row(s, rank=rk, logprob=lp)]).alignment.iloc[0]
    assert al["A"] == 0.0  # rank: the greedy student writes neither
    # prob: the content is the first 7 and the first 12 (the later ones are copies)
    assert al["A_prob"] == pytest.approx((0.5 + 0.1) / 2)
    assert al["A_geo"] == pytest.approx(math.sqrt(0.5 * 0.1))  # geo: the weaker decision weighs more
    with pytest.raises(ValueError, match="alignment"):
        MetricSettings(alignment="entropy")


def test_alignment_nan_reasons():
    copy = sample("d", "1", "Compute 3.", "The answer is 3.", "3")
    other = sample("d", "2", Q, R_TEXT, "12")
    al = _ctx([copy, other], [token_row(copy)]).alignment
    assert math.isnan(al.loc[0, "A"]) and al.loc[0, "A_reason"] == "no content tokens"
    assert math.isnan(al.loc[1, "A"]) and al.loc[1, "A_reason"] == "no token statistics"


# ------------------------------------------------------------------ quality q_i


def test_quality_cases():
    ok = sample("d", "ok", Q, R_TEXT, "12")
    wrong = sample("d", "wrong", Q, R_TEXT.replace("12", "13"), "12")
    cut = sample("d", "cut", "Compute 3 + 4 + 6.", "3 + 4 = 7\n7 + 6 = 13\nThe answer is 13.", "13")
    nogold = sample("d", "nogold", Q, R_TEXT, None)
    ungr = sample("d", "ungr", Q, R_TEXT, "??")
    noans = sample("d", "noans", Q, "3 + 4 = 7, then I stopped", "12")
    rows = [token_row(x, truncated=(x is cut)) for x in (ok, wrong, cut, nogold, ungr, noans)]
    qual = _ctx([ok, wrong, cut, nogold, ungr, noans], rows).quality
    assert qual["q"].iloc[[0, 1, 2, 5]].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert math.isnan(qual["q"].iloc[3]) and qual["q_reason"].iloc[3] == "no gold"
    assert math.isnan(qual["q"].iloc[4]) and qual["q_reason"].iloc[4] == "ungradable: gold not parseable"
    assert qual["q_reason"].iloc[[0, 1, 2, 5]].isna().all()
    assert qual["answer"].iloc[1] == "13"


def test_pseudo_gold_majority_tie_and_single():
    qa, qb, qc = "Compute 3 + 4 + 5.", "Compute 2 + 3.", "Compute 1 + 1."
    s = [
        sample("A", "1", qa, "The answer is 12.", None), sample("B", "1", qa, "The answer is 12.", None),
        sample("C", "1", qa, "The answer is 13.", None),
        sample("A", "2", qb, "The answer is 5.", None), sample("B", "2", qb, "The answer is 6.", None),
        sample("A", "3", qc, "The answer is 2.", None),
    ]
    rows = [token_row(x) for x in s]
    off = _ctx(s, rows).quality
    assert off["q"].isna().all() and set(off["q_reason"]) == {"no gold"}
    ctx = _ctx(s, rows, pseudo_gold=True)
    on = ctx.quality.set_index(ctx.samples["dataset"] + ctx.samples["sample_id"])
    assert on.loc[["A1", "B1", "C1"], "q"].tolist() == [1.0, 1.0, 0.0]
    assert on["pseudo_gold"].sum() == 3 and on.loc[["A1", "B1", "C1"], "pseudo_gold"].all()
    assert on.loc["A2", "q_reason"] == on.loc["B2", "q_reason"] == "no majority"
    assert on.loc["A3", "q_reason"] == "no gold (pseudo-gold needs answers from 2+ datasets)"
    rep = score_tables(pool(*s), tokens_table(rows), attempts_table({x.question_hash: ["wrong"] for x in s}),
                       metrics=["dmc", "teacher_accuracy"], settings=MetricSettings(content="numbers", pseudo_gold=True),
                       grader=FakeGrader())
    assert rep.meta["pseudo_gold_used"] is True
    by = rep.datasets.set_index("dataset")
    assert by.loc["A", "n_pseudo_gold"] == 1 and by.loc["C", "teacher_accuracy"] == 0.0


# ------------------------------------------------------------------ capability c_i


def test_capability_pass_rate_excludes_ungradable():
    s1, s2, s3 = (sample("d", str(k), f"Compute {k} + 1.", f"The answer is {k + 1}.", str(k + 1)) for k in (1, 2, 3))
    att = attempts_table({s1.question_hash: ["correct", "wrong", "ungradable"],
                          s2.question_hash: ["ungradable", "ungradable"]})
    cap = _ctx([s1, s2, s3], attempts=att).capability
    assert cap.loc[0, "c"] == pytest.approx(0.5) and cap.loc[0, "c_reason"] is None
    assert math.isnan(cap.loc[1, "c"]) and cap.loc[1, "c_reason"] == "all attempts ungradable"
    assert math.isnan(cap.loc[2, "c"]) and cap.loc[2, "c_reason"] == "no attempts"


def test_capability_rejects_unknown_grade():
    s1 = sample("d", "1", "Compute 1 + 1.", "The answer is 2.", "2")
    att = attempts_table({s1.question_hash: ["correct"]})
    att.loc[0, "grade"] = "maybe"
    with pytest.raises(ValueError, match="grade 'maybe'"):
        _ctx([s1], attempts=att).capability  # noqa: B018


# ------------------------------------------------------------------ DMC v1

QS = {k: f"Compute {k} + 10 + 20." for k in (1, 2, 3, 4)}


def _trace(k: int, wrong: bool = False) -> tuple[str, str]:
    """Two novel numbers (k+10 and the total), then the answer (a copy)."""
    a, b = k + 10, k + 30
    ans = b + 1 if wrong else b
    return f"{k} + 10 = {a}\n{a} + 20 = {ans}\nThe answer is {ans}.", str(ans)


def _dmc_pool():
    """X: Q1 correct (A=1), Q2 wrong (A=0.5). Y: Q3 correct (A=0.5), Q4 no gold. c: 1, .5, 0, .5."""
    x1 = sample("X", "1", QS[1], _trace(1)[0], "31")
    x2t, x2a = _trace(2, wrong=True)
    x2 = sample("X", "2", QS[2], x2t, "32")
    y1 = sample("Y", "1", QS[3], _trace(3)[0], "33")
    y2 = sample("Y", "2", QS[4], _trace(4)[0], None)
    rows = [token_row(x1), token_row(x2, rank_of={x2a: 3}), token_row(y1, rank_of={"33": 2}), token_row(y2)]
    att = attempts_table({x1.question_hash: ["correct", "correct"], x2.question_hash: ["correct", "wrong"],
                          y1.question_hash: ["wrong", "wrong"], y2.question_hash: ["wrong", "correct"]})
    return [x1, x2, y1, y2], tokens_table(rows), att


def _R(c, c_t, sigma=0.15):
    return math.exp(-((c - c_t) ** 2) / (2 * sigma**2))


def test_dmc_hand_computed():
    s, toks, att = _dmc_pool()
    rep = score_tables(pool(*s), toks, att, metrics=["dmc"], grader=FakeGrader(),
                       settings=MetricSettings(content="numbers", epsilon=0.3, sigma=0.15))
    d = rep.datasets.set_index("dataset")
    # C_T over the pool's 4 questions = (1 + .5 + 0 + .5) / 4
    assert d.loc["X", "C_T"] == pytest.approx(0.5) and d.loc["Y", "C_T"] == pytest.approx(0.5)
    assert d.loc["X", "C_D"] == pytest.approx(0.75) and d.loc["Y", "C_D"] == pytest.approx(0.25)
    assert d.loc["X", "R"] == pytest.approx(_R(0.75, 0.5))
    # X: w*A = [1*1, 0.3*0.5]; Y: only y1 scored (y2 has no gold): 1*0.5
    assert d.loc["X", "dmc"] == pytest.approx(_R(0.75, 0.5) * (1.0 + 0.15) / 2)
    assert d.loc["Y", "dmc"] == pytest.approx(_R(0.25, 0.5) * 0.5)
    assert d.loc["X", "Q"] == pytest.approx(0.5) and d.loc["Y", "Q"] == pytest.approx(1.0)
    assert d.loc["X", "A"] == pytest.approx(0.75) and d.loc["Y", "A"] == pytest.approx(0.75)
    assert d.loc["X", "n_scored"] == 2 and d.loc["Y", "n_scored"] == 1
    assert d.loc["Y", "nan_reasons"] == {"dmc": {"no gold": 1}}
    assert list(rep.datasets["dataset"]) == ["X", "Y"]  # sorted by DMC, best first
    m = rep.samples.set_index(["dataset", "sample_id"])
    assert m.loc[("X", "1"), "m"] == pytest.approx(1.0 * _R(1.0, 0.5))
    assert m.loc[("X", "2"), "m"] == pytest.approx(0.15 * _R(0.5, 0.5))
    assert m.loc[("Y", "1"), "m"] == pytest.approx(0.5 * _R(0.0, 0.5))
    assert math.isnan(m.loc[("Y", "2"), "m"]) and m.loc[("Y", "2"), "m_reason"] == "no gold"
    assert m.loc[("X", "2"), "w"] == pytest.approx(0.3)


def test_dmc_settings_and_target():
    s, toks, att = _dmc_pool()
    rep = score_tables(pool(*s), toks, att, metrics=["dmc"], grader=FakeGrader(),
                       settings=MetricSettings(content="numbers", epsilon=0.0, sigma=0.3),
                       target_questions=[s[0].question_hash, s[1].question_hash])
    d = rep.datasets.set_index("dataset")
    assert d.loc["X", "C_T"] == pytest.approx(0.75) and d.loc["X", "R"] == pytest.approx(1.0)
    assert d.loc["X", "dmc"] == pytest.approx((1.0 + 0.0) / 2)
    assert d.loc["Y", "dmc"] == pytest.approx(_R(0.25, 0.75, 0.3) * 0.5)
    assert rep.meta["target"] == {"kind": "eval", "n_questions": 2}
    assert rep.meta["settings"]["epsilon"] == 0.0 and rep.meta["metrics"]["dmc"]["version"] == "dmc-v1.3"


def test_generation_budget_zeroes_traces_the_student_cannot_finish():
    s, toks, att = _dmc_pool()
    toks.loc[toks["sample_hash"] == s[0].hash, "n_tokens"] = 1000  # x1 no longer fits a 100-token budget
    for metric in ("dmc", "dmc_v2"):
        free = score_tables(pool(*s), toks, att, metrics=[metric], grader=FakeGrader(),
                            settings=MetricSettings(content="numbers", capability="attempts", alignment="rank", epsilon=0.3)).datasets.set_index("dataset")
        cut = score_tables(pool(*s), toks, att, metrics=[metric], grader=FakeGrader(),
                           settings=MetricSettings(content="numbers", capability="attempts", alignment="rank", epsilon=0.3, budget=100)).datasets.set_index("dataset")
        # X: w*A = [1*1, 0.3*0.5] -> [0 (over budget, whatever its quality), 0.15]; Y unchanged
        assert cut.loc["X", metric] == pytest.approx(free.loc["X", metric] * 0.15 / 1.15)
        assert cut.loc["Y", metric] == pytest.approx(free.loc["Y", metric])
    d = score_tables(pool(*s), toks, att, metrics=["dmc"], grader=FakeGrader(),
                     settings=MetricSettings(content="numbers", capability="attempts", alignment="rank", budget=100, epsilon=1.0)).datasets.set_index("dataset")
    assert d.loc["X", "F"] == pytest.approx(0.5) and d.loc["Y", "F"] == pytest.approx(1.0)
    assert d.loc["X", "dmc"] == pytest.approx(_R(0.75, 0.5, 0.25) * (0.0 + 0.5) / 2)  # eps = 1 does not soften it
    free = score_tables(pool(*s), toks, att, metrics=["dmc"], grader=FakeGrader(), settings=NUMBERS).datasets.set_index("dataset")
    assert (free["F"] == 1.0).all()  # no budget: every trace fits
    with pytest.raises(ValueError, match="budget"):
        MetricSettings(budget=0)


def test_a_trace_over_the_budget_fits_when_its_cut_still_gives_its_answer():
    early = "3 + 4 = 7\n7 + 5 = 12\nThe answer is 12. Let me check: 7 + 5 = 12. Yes."
    late = "3 + 4 = 7\nLet me check: 3 + 4 = 7. Yes.\n7 + 5 = 12\nThe answer is 12."
    cut = len(tokenize(early[: early.index(" Let")]))  # the budget ends right after "The answer is 12."
    s = [sample("d", "early", Q, early, "12"), sample("d", "late", Q, late, "12"), sample("d", "short", Q, R_TEXT, "12")]
    rows = [token_row(x) for x in s]
    assert len(tokenize(late[: late.index("The answer")])) > cut >= len(tokenize(R_TEXT))
    fits = _ctx(s, rows, budget=cut).fits()
    # early: cut after its answer, still 12; late: cut before it, no answer; short: fits whole
    assert fits.tolist() == [1.0, 0.0, 1.0]
    assert _ctx(s, rows, budget=cut - 1).fits().tolist() == [1.0, 0.0, 1.0]  # "The answer is 12", the "." cut
    assert _ctx(s, rows, budget=cut - 2).fits().tolist() == [0.0, 0.0, 0.0]  # "The answer is": the 12 is cut
    assert _ctx(s, rows).fits().tolist() == [1.0, 1.0, 1.0]  # no budget
    wrong = "3 + 4 = 7\n7 + 5 = 13\nThe answer is 13. Let me check: 7 + 5 = 12. Oops."
    w = [sample("d", "wrong", Q, wrong, "12")]
    # a wrong trace reaches its own answer (13) within the budget: the fit is about length, not quality
    assert _ctx(w, [token_row(w[0])], budget=cut).fits().tolist() == [1.0]


def test_dmc_nan_without_attempts():
    s, toks, _ = _dmc_pool()
    rep = score_tables(pool(*s), toks, None, metrics=["dmc"], grader=FakeGrader(), settings=NUMBERS)
    d = rep.datasets.set_index("dataset")
    assert d["dmc"].isna().all()
    assert d.loc["X", "reasons"]["dmc"].startswith("C_T: no capability")
    assert rep.samples["m_reason"].iloc[0] == "no attempts"


def test_dmc_bootstrap_ci_deterministic_and_brackets_point():
    s, toks, att = _dmc_pool()
    a = score_tables(pool(*s), toks, att, metrics=["dmc"], grader=FakeGrader(), settings=NUMBERS).datasets.set_index("dataset")
    b = score_tables(pool(*s), toks, att, metrics=["dmc"], grader=FakeGrader(), settings=NUMBERS).datasets.set_index("dataset")
    assert a.loc["X", "dmc_lo"] == b.loc["X", "dmc_lo"] and a.loc["X", "dmc_hi"] == b.loc["X", "dmc_hi"]
    assert a.loc["X", "dmc_lo"] <= a.loc["X", "dmc"] <= a.loc["X", "dmc_hi"]
    assert a.loc["X", "dmc_hi"] > a.loc["X", "dmc_lo"]
    none = score_tables(pool(*s), toks, att, metrics=["dmc"], grader=FakeGrader(),
                        settings=MetricSettings(content="numbers", n_boot=0)).datasets
    assert none["dmc_lo"].isna().all() and none["dmc"].notna().all()


def test_bootstrap_spread_matches_binomial_se():
    rng = np.random.default_rng(1)
    n = 400
    wA = (rng.random(n) < 0.3).astype(float)
    c = np.full(n, 0.5)
    mean_wa, c_d = bootstrap_replicates(wA, c, np.arange(n), 2000, np.random.default_rng(0))
    p = wA.mean()
    assert np.allclose(c_d, 0.5)
    assert abs(mean_wa.mean() - p) < 0.005
    assert mean_wa.std() == pytest.approx(math.sqrt(p * (1 - p) / n), rel=0.1)


def test_bootstrap_counts_each_question_once():
    # 20 questions with two traces each (c=0), 20 with one trace (c=1): the point C_D is 0.5
    # (distinct questions), not 1/3 (per trace); the replicates must centre on 0.5
    question = np.array([f"a{j}" for j in range(20) for _ in range(2)] + [f"b{j}" for j in range(20)])
    c = np.array([0.0] * 40 + [1.0] * 20)
    _, c_d = bootstrap_replicates(np.ones(60), c, question, 4000, np.random.default_rng(0))
    assert abs(np.nanmean(c_d) - 0.5) < 0.01


def test_difficulty_match_values():
    assert difficulty_match(0.5, 0.5, 0.15) == pytest.approx(1.0)
    assert difficulty_match(0.65, 0.5, 0.15) == pytest.approx(math.exp(-0.5))
    assert difficulty_match(0.35, 0.5, 0.15) == pytest.approx(difficulty_match(0.65, 0.5, 0.15))
    assert math.isnan(difficulty_match(float("nan"), 0.5, 0.15))


def test_settings_validation():
    for bad in ({"epsilon": 1.5}, {"sigma": 0.0}, {"content": "tokens"}, {"top_k": 0}, {"ci": 1.0}, {"n_boot": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MetricSettings(**bad)


def test_dmc_grader_memoizes_verdicts_but_not_ungradable_ones(monkeypatch):
    import dmc.metrics.context as context
    from dmc.grading.result import Grade

    calls = []

    def flaky(texts, golds, verifier):
        calls.append(list(texts))
        return [Grade.ungradable("timeout", "7") if len(calls) == 1 else Grade("correct", None, "7") for _ in texts]

    monkeypatch.setattr(context, "grade_many", flaky)
    grader = context.DmcGrader("numeric")
    text = "3 + 4 = 7. The answer is 7 (memo test)."
    assert grader.grade_many([text], ["7"])[0].status == "ungradable"
    assert grader.grade_many([text], ["7"])[0].status == "correct"  # a timeout is tried again
    assert context.DmcGrader("numeric").grade_many([text, text], ["7", "7"])[0].status == "correct"
    assert calls == [[text], [text]]  # the verdict was kept, for every instance
    assert context.DmcGrader("exact").grade_many([text], ["7"])[0].status == "correct"  # another verifier: graded
    assert len(calls) == 3


def test_commands_that_evaluate_score_at_their_evaluation_budget():
    from dmc.scoring import ScoringSettings

    assert ScoringSettings().with_budget(96).metric.budget == 96
    explicit = ScoringSettings(metric=MetricSettings(budget=400))
    assert explicit.with_budget(96) is explicit  # a budget the user set wins
