import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dmc.validation.correlation import correlate, correlation_table, fmt_rho, headline, seed_agreement


def test_perfect_monotone_relation():
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    y = [0.1, 0.2, 0.4, 0.8, 0.9, 0.95]  # monotone, not linear
    for method in ("spearman", "kendall"):
        c = correlate(x, y, method, n_boot=200, seed=1)
        assert c.value == pytest.approx(1.0)
        # every defined resample of a perfectly monotone relation is also perfect
        assert c.lo == pytest.approx(1.0) and c.hi == pytest.approx(1.0)
        assert c.n == 6 and c.n_missing == 0 and c.reason is None
    p = correlate(x, y, "pearson", n_boot=0)
    assert 0.9 < p.value < 1.0
    assert math.isnan(p.lo) and math.isnan(p.hi)  # no bootstrap asked


def test_matches_scipy_and_reversal_flips_sign():
    rng = np.random.default_rng(3)
    x = rng.normal(size=12)
    y = 0.5 * x + rng.normal(size=12)
    for method, fn in (("spearman", stats.spearmanr), ("kendall", stats.kendalltau), ("pearson", stats.pearsonr)):
        c = correlate(x, y, method, n_boot=300, seed=0)
        ref = fn(x, y)
        assert c.value == pytest.approx(ref.statistic, abs=1e-12)
        assert c.p_value == pytest.approx(ref.pvalue, rel=1e-9)
        assert c.lo <= c.value <= c.hi
        assert c.n_boot_valid == 300
        neg = correlate(-x, y, method, n_boot=300, seed=0)
        assert neg.value == pytest.approx(-c.value)
        assert neg.lo == pytest.approx(-c.hi) and neg.hi == pytest.approx(-c.lo)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=10), rng.normal(size=10)
    a = correlate(x, y, "spearman", n_boot=500, seed=7)
    b = correlate(x, y, "spearman", n_boot=500, seed=7)
    c = correlate(x, y, "spearman", n_boot=500, seed=8)
    assert (a.lo, a.hi) == (b.lo, b.hi)
    assert (a.lo, a.hi) != (c.lo, c.hi)


def test_bootstrap_ci_matches_a_direct_resampling_loop():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, size=9).astype(float)  # ties, so resamples exercise tau-b and tied ranks
    y = x + rng.normal(size=9)
    for method, fn in (("spearman", stats.spearmanr), ("kendall", stats.kendalltau), ("pearson", stats.pearsonr)):
        c = correlate(x, y, method, n_boot=400, seed=11)
        idx = np.random.default_rng(11).integers(0, 9, size=(400, 9))
        ref = []
        for row in idx:
            if np.ptp(x[row]) > 0 and np.ptp(y[row]) > 0:
                ref.append(fn(x[row], y[row]).statistic)
        assert c.n_boot_valid == len(ref)
        lo, hi = np.quantile(ref, [0.025, 0.975])
        assert c.lo == pytest.approx(lo, abs=1e-9) and c.hi == pytest.approx(hi, abs=1e-9)


def test_nan_pairs_are_dropped_and_counted():
    x = [1, 2, float("nan"), 4, 5, 6]
    y = [1, 2, 3, float("inf"), 5, 7]
    c = correlate(x, y, "spearman", n_boot=50)
    assert c.n == 4 and c.n_missing == 2
    assert c.value == pytest.approx(1.0)


def test_undefined_cases_give_nan_with_reason():
    const = correlate([0.5] * 5, [1, 2, 3, 4, 5], "pearson", n_boot=10)
    assert math.isnan(const.value) and "metric is constant" in const.reason
    flat_acc = correlate([1, 2, 3, 4], [0.3] * 4, "kendall", n_boot=10)
    assert math.isnan(flat_acc.value) and "accuracy is constant" in flat_acc.reason
    few = correlate([1, 2, float("nan")], [1, 2, 3], "spearman")
    assert math.isnan(few.value) and few.n == 2 and "need >= 3" in few.reason
    with pytest.raises(ValueError, match="unknown correlation method"):
        correlate([1, 2, 3], [1, 2, 3], "tau")
    with pytest.raises(ValueError, match="equal length"):
        correlate([1, 2, 3], [1, 2], "spearman")


def test_table_signs_lower_is_better_metrics_and_ranks_predictors():
    acc = np.array([0.2, 0.35, 0.5, 0.6, 0.8, 0.9])
    frame = pd.DataFrame({
        "dataset": list("abcdef"),
        "accuracy": acc,
        "dmc": acc * 0.5 + np.array([0, 0.01, -0.01, 0, 0.02, 0]),  # higher is better, tracks accuracy
        "rsr": 10 - 8 * acc,  # lower is better, perfectly (inversely) tracks accuracy
        "length": [5, 1, 4, 2, 6, 3],  # no direction
        "const": [1.0] * 6,
    })
    t = correlation_table(frame, {"dmc": "higher", "rsr": "lower", "length": "none", "const": "higher",
                                  "ifd": "higher"}, n_boot=100)
    assert set(t["method"]) == {"spearman", "kendall", "pearson"}
    assert len(t) == 5 * 3
    rsr = t[(t.metric == "rsr") & (t.method == "spearman")].iloc[0]
    assert rsr["rho"] == pytest.approx(-1.0) and rsr["signed"] == pytest.approx(1.0)
    assert rsr["signed_lo"] == pytest.approx(-rsr["hi"]) and rsr["signed_hi"] == pytest.approx(-rsr["lo"])
    dmc = t[(t.metric == "dmc") & (t.method == "spearman")].iloc[0]
    assert dmc["rho"] == pytest.approx(1.0) and dmc["signed"] == pytest.approx(1.0)
    missing = t[t.metric == "ifd"]
    assert missing["rho"].isna().all() and missing["reason"].str.contains("not computed").all()
    const = t[t.metric == "const"]
    assert const["rho"].isna().all() and const["reason"].str.contains("constant").all()
    h = headline(t)
    assert list(h["metric"])[:2] in (["dmc", "rsr"], ["rsr", "dmc"])
    assert list(h["metric"])[-2:] in (["const", "ifd"], ["ifd", "const"])  # NaN last
    length = h[h.metric == "length"].iloc[0]
    assert length["rho"] == pytest.approx(stats.spearmanr(frame["length"], acc).statistic)


def test_fmt_rho():
    assert fmt_rho(0.5, 0.1, 0.9) == "+0.50 [+0.10, +0.90]"
    assert fmt_rho(float("nan"), 0, 0) == "n/a"
    assert fmt_rho(-0.25, float("nan"), float("nan")) == "-0.25"


def _runs(table: dict[int, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": f"d{i}", "seed": s, "accuracy": a}
                         for s, accs in table.items() for i, a in enumerate(accs)])


def test_seed_agreement_is_spearman_brown_over_the_pairwise_rhos():
    acc = {0: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 1: [0.2, 0.1, 0.3, 0.5, 0.4, 0.6], 2: [0.1, 0.3, 0.2, 0.4, 0.6, 0.5]}
    out = seed_agreement(_runs(acc))
    pairs = [(0, 1), (0, 2), (1, 2)]
    rhos = [stats.spearmanr(acc[a], acc[b])[0] for a, b in pairs]
    assert [p["seeds"] for p in out["pairs"]] == [list(p) for p in pairs]
    assert [p["rho"] for p in out["pairs"]] == pytest.approx(rhos)
    r = np.mean(rhos)
    assert out["n_seeds"] == 3 and out["mean_rho"] == pytest.approx(r)
    assert out["reliability"] == pytest.approx(3 * r / (1 + 2 * r))
    assert out["ceiling"] == pytest.approx(math.sqrt(3 * r / (1 + 2 * r)))
    assert 0 < out["mean_rho"] < out["reliability"] < out["ceiling"] < 1 and out["reason"] is None
    # seeds that rank the datasets identically leave no noise: the ceiling is 1
    same = seed_agreement(_runs({0: acc[0], 1: [a + 0.05 for a in acc[0]]}))
    assert same["mean_rho"] == pytest.approx(1.0) and same["ceiling"] == pytest.approx(1.0)


def test_seed_agreement_drops_failed_pilots_and_explains_nan():
    acc = {0: [0.1, 0.2, 0.3, 0.4, 0.5], 1: [float("nan"), 0.2, 0.3, 0.4, 0.5]}
    out = seed_agreement(_runs(acc))
    assert out["pairs"][0]["n"] == 4 and out["mean_rho"] == pytest.approx(1.0)
    one = seed_agreement(_runs({0: acc[0]}))
    assert math.isnan(one["ceiling"]) and "need 2" in one["reason"]
    reversed_ = seed_agreement(_runs({0: acc[0], 1: acc[0][::-1]}))
    assert reversed_["mean_rho"] == pytest.approx(-1.0) and math.isnan(reversed_["ceiling"])
    assert "do not agree" in reversed_["reason"]
