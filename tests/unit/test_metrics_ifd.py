"""IFD (Cherry LLM) and its perplexity-ratio variant ifd_ppl (Superfiltering), against hand-computed values.

Token log-probabilities of the two passes are written by hand (the toy tokenization of
tests/unit/test_metrics_helpers.py: one token per word here). Both ratios compare the mean NLL of the
response tokens given the question with the mean NLL of the SAME tokens without it, the first
response token left out of both (it has no context without the question).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_metrics_helpers import FakeGrader, pool, sample, token_row, tokens_table

from dmc.metrics import METRICS, MetricSettings, score_tables
from dmc.metrics.baselines import IFD_ALL_FILTERED, IFD_FILTER_REASON, IFD_MISALIGNED, IFD_NO_NOQ
from dmc.settings import result_fields

NAN = float("nan")
IFDS = ["ifd", "ifd_ppl"]


def _row(ds: str, sid: str, logprob: list[float], noq: list[float] | None):
    """A sample whose response has one toy token per log-prob, and its tokens row."""
    s = sample(ds, sid, f"Question {sid}?", " ".join(["w"] * len(logprob)), None)
    return s, token_row(s, logprob=logprob, logprob_noq=noq)


def _score(rows, settings: MetricSettings | None = None, metrics=IFDS):
    samples, toks = zip(*rows)
    return score_tables(pool(*samples), tokens_table(list(toks)), None, metrics=metrics,
                        settings=settings or MetricSettings(n_boot=0), grader=FakeGrader())


def _per(rep):
    return rep.samples.set_index("sample_id")


def test_declarations():
    ifd, ppl = METRICS["ifd"], METRICS["ifd_ppl"]
    assert (ifd.version, ppl.version) == ("ifd-v2", "ifd-ppl-v1")
    # both references keep IFD < 1 and select the highest: higher is better
    assert ifd.direction == ppl.direction == "higher"
    assert ifd.range == ppl.range == (0.0, math.inf)
    assert ifd.needs == ppl.needs == frozenset({"tokens", "tokens_noq"})
    assert list(METRICS).index("ifd_ppl") == list(METRICS).index("ifd") + 1


def test_filter_is_a_result_setting():
    assert MetricSettings().ifd_filter is True
    assert result_fields(MetricSettings())["ifd_filter"] is True  # in cache keys and the report's meta
    assert MetricSettings(ifd_filter=False).to_dict()["ifd_filter"] is False


def test_exact_values_same_tokens_in_both_means():
    # given the question: NLL 3 (first token, dropped), 0.5, 1, 1.5 -> mean 1.0
    # alone: first token unscored (NaN: no BOS), then 2, 1, 3 -> mean 2.0
    rows = [_row("D", "a", [-3.0, -0.5, -1.0, -1.5], [NAN, -2.0, -1.0, -3.0]),
            # a BOS tokenizer scores the first token alone (from BOS only): still dropped, same value
            _row("D", "b", [-3.0, -0.5, -1.0, -1.5], [-9.0, -2.0, -1.0, -3.0])]
    per = _per(_score(rows))
    assert per.loc["a", "ifd"] == pytest.approx(1.0 / 2.0, abs=1e-12)
    assert per.loc["a", "ifd_ppl"] == pytest.approx(math.exp(1.0) / math.exp(2.0), abs=1e-12)
    assert per.loc["b", "ifd"] == per.loc["a", "ifd"] and per.loc["b", "ifd_ppl"] == per.loc["a", "ifd_ppl"]
    assert per["ifd_reason"].isna().all() and per["ifd_ppl_reason"].isna().all()


def test_the_two_ratios_order_differently_but_filter_the_same():
    # a: IFD 1.2 / 4 = 0.3, ratio exp(1.2 - 4); b: 0.4 / 1 = 0.4, exp(0.4 - 1); c: 3 / 4 = 0.75, exp(3 - 4).
    # c beats b by IFD but not by the perplexity ratio: a ratio of means vs the exp of their difference
    rows = [_row("D", "a", [-1.0, -1.2, -1.2], [NAN, -4.0, -4.0]),
            _row("D", "b", [-1.0, -0.4, -0.4], [NAN, -1.0, -1.0]),
            _row("D", "c", [-1.0, -3.0, -3.0], [NAN, -4.0, -4.0])]
    per = _per(_score(rows))
    assert per["ifd"].tolist() == pytest.approx([0.3, 0.4, 0.75], abs=1e-12)
    assert per["ifd_ppl"].tolist() == pytest.approx([math.exp(-2.8), math.exp(-0.6), math.exp(-1.0)], abs=1e-12)
    assert per.loc["c", "ifd"] > per.loc["b", "ifd"] and per.loc["c", "ifd_ppl"] < per.loc["b", "ifd_ppl"]
    # the filter sets agree: IFD >= 1 exactly when PPL(y|x) / PPL(y) >= 1 (mean NLL(y|x) >= mean NLL(y))
    rng = np.random.default_rng(0)
    rand = [_row("R", str(k), list(-rng.gamma(2.0, 0.5, 6)), [NAN, *(-rng.gamma(2.0, 0.5, 5))]) for k in range(40)]
    r = _score(rand, MetricSettings(n_boot=0, ifd_filter=False)).samples
    assert ((r["ifd"] >= 1.0) == (r["ifd_ppl"] >= 1.0)).all() and 0 < (r["ifd"] >= 1.0).sum() < 40


def test_filter_gives_nan_with_reason():
    rows = [_row("D", "kept", [-1.0, -0.5, -0.5], [NAN, -1.0, -1.0]),  # IFD 0.5
            _row("D", "over", [-1.0, -2.0, -2.0], [NAN, -1.0, -1.0]),  # IFD 2: the question does not help
            _row("D", "one", [-1.0, -1.5, -0.5], [NAN, -0.5, -1.5])]  # IFD exactly 1: filtered too (>= 1)
    per = _per(_score(rows))
    for name in IFDS:
        assert per.loc["kept", name] == pytest.approx(0.5 if name == "ifd" else math.exp(-0.5), abs=1e-12)
        for sid in ("over", "one"):
            assert math.isnan(per.loc[sid, name]) and per.loc[sid, f"{name}_reason"] == IFD_FILTER_REASON
    off = _per(_score(rows, MetricSettings(n_boot=0, ifd_filter=False)))
    assert off["ifd"].tolist() == pytest.approx([0.5, 2.0, 1.0], abs=1e-12)
    assert off["ifd_ppl"].tolist() == pytest.approx([math.exp(-0.5), math.exp(1.0), 1.0], abs=1e-12)
    assert off["ifd_reason"].isna().all() and off["ifd_ppl_reason"].isna().all()


def test_dataset_mean_over_kept_samples_and_filtered_share():
    rows = [
        # MIXED: IFD 0.5 and 0.25 kept, 2.0 filtered, one without a question-free pass (not scored)
        _row("MIXED", "m1", [-1.0, -0.5, -0.5], [NAN, -1.0, -1.0]),
        _row("MIXED", "m2", [-1.0, -0.5, -0.5], [NAN, -2.0, -2.0]),
        _row("MIXED", "m3", [-1.0, -2.0, -2.0], [NAN, -1.0, -1.0]),
        _row("MIXED", "m4", [-1.0, -0.5, -0.5], None),
        # ALLOVER: every scored sample has IFD >= 1
        _row("ALLOVER", "o1", [-1.0, -3.0, -3.0], [NAN, -1.0, -1.0]),
        _row("ALLOVER", "o2", [-1.0, -1.0, -1.0], [NAN, -1.0, -1.0]),
        # NONOQ: no question-free pass at all
        _row("NONOQ", "n1", [-1.0, -0.5, -0.5], None),
    ]
    rep = _score(rows)
    d = rep.datasets.set_index("dataset")
    assert d.loc["MIXED", "ifd"] == pytest.approx((0.5 + 0.25) / 2, abs=1e-12)
    assert d.loc["MIXED", "ifd_ppl"] == pytest.approx((math.exp(-0.5) + math.exp(-1.5)) / 2, abs=1e-12)
    for name in IFDS:
        assert d.loc["MIXED", f"{name}_filtered"] == pytest.approx(1 / 3)  # of the 3 scored samples
        assert d.loc["MIXED", "nan_reasons"][name] == {IFD_FILTER_REASON: 1, "no question-free pass": 1}
        assert name not in d.loc["MIXED", "reasons"]
        assert math.isnan(d.loc["ALLOVER", name]) and d.loc["ALLOVER", f"{name}_filtered"] == 1.0
        assert d.loc["ALLOVER", "reasons"][name] == IFD_ALL_FILTERED
        assert d.loc["ALLOVER", "nan_reasons"][name] == {IFD_FILTER_REASON: 2}
        assert math.isnan(d.loc["NONOQ", name]) and math.isnan(d.loc["NONOQ", f"{name}_filtered"])
        assert d.loc["NONOQ", "reasons"][name] == IFD_NO_NOQ

    # without the filter every scored sample counts; the share of IFD >= 1 is still reported
    off = _score(rows, MetricSettings(n_boot=0, ifd_filter=False)).datasets.set_index("dataset")
    assert off.loc["MIXED", "ifd"] == pytest.approx((0.5 + 0.25 + 2.0) / 3, abs=1e-12)
    assert off.loc["ALLOVER", "ifd"] == pytest.approx((3.0 + 1.0) / 2, abs=1e-12)
    assert off.loc["ALLOVER", "ifd_ppl"] == pytest.approx((math.exp(2.0) + 1.0) / 2, abs=1e-12)
    assert off.loc["MIXED", "ifd_filtered"] == pytest.approx(1 / 3) and off.loc["ALLOVER", "ifd_filtered"] == 1.0
    assert "ifd" not in off.loc["ALLOVER", "reasons"]


def test_unscorable_samples_have_reasons():
    rows = [
        _row("D", "ok", [-1.0, -0.5, -0.5], [NAN, -1.0, -1.0]),
        _row("D", "short", [-1.0, -0.5, -0.5], [NAN, -1.0]),  # tokens of the two passes cannot be paired
        _row("D", "single", [-0.5], [NAN]),  # its one token is the dropped first one
        _row("D", "hole", [-1.0, -0.5, -0.5], [NAN, NAN, -1.0]),  # a NaN past the first token
        _row("D", "flat", [-1.0, -0.5, -0.5], [NAN, 0.0, 0.0]),  # certain without the question
    ]
    per = _per(_score(rows))
    want = {"short": IFD_MISALIGNED, "single": "one-token response (its first token is not scored)",
            "hole": "non-finite log-probabilities"}
    for sid, why in want.items():
        for name in IFDS:
            assert math.isnan(per.loc[sid, name]) and per.loc[sid, f"{name}_reason"] == why, (sid, name)
    # IFD divides by the question-free NLL; the perplexity ratio exp(0.5 - 0) is defined, and >= 1
    assert per.loc["flat", "ifd_reason"] == "zero surprisal without the question"
    assert per.loc["flat", "ifd_ppl_reason"] == IFD_FILTER_REASON
    assert per.loc["ok", "ifd"] == pytest.approx(0.5, abs=1e-12)
    d = _score(rows).datasets.iloc[0]
    assert d["ifd_filtered"] == 0.0 and d["ifd_ppl_filtered"] == pytest.approx(1 / 2)  # scored: ok (+ flat)
