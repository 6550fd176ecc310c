"""The contract every registered metric keeps, checked for each entry of ``dmc.metrics.METRICS``.

(a) declarations (name, version, direction, range) and every finite value inside the range;
(b) direction: on a small hand-built case whose ordering is known from the metric's definition, the
    better dataset scores better in the declared direction (metrics with no direction say "none");
(c) a sample or dataset the metric cannot score is NaN with a non-empty reason, never a default;
(d) determinism: same inputs and seed give identical output; another seed changes only the
    ``random`` baseline and the bootstrap intervals.

Parametrized over the registry: a metric registered later is run through all four checks, and the
table-driven ones (b, c) fail until it has a row in DIRECTION_CASES / NAN_EXPECTED. Tables are
built by hand (tests/test_metrics_helpers.py's toy tokenization and FakeGrader): no model.
"""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from test_metrics_helpers import FakeGrader, attempts_table, pool, sample, token_row, tokenize, tokens_table

from dmc.data.schema import Sample
from dmc.metrics import METRICS, MetricSettings, ScoreReport, directions_footer, score_tables
from dmc.metrics.base import Direction
from dmc.metrics.baselines import IFD_FILTER_REASON
from dmc.stats.tables import ATTEMPTS_SCHEMA, TOKENS_SCHEMA

ALL = list(METRICS)
DIRECTIONS = typing.get_args(Direction)  # ("higher", "lower", "none"): "none" = no preferred direction
# The fixtures mark the traces' novel numbers as their content: every metric is scored with the
# numbers content selector here.
# the cases are built on attempts tables: dmc_v2 reads pass rates and top-1 alignment here (v2.2's
# defaults); its likelihood and probability paths are tested in test_answer_likelihood / test_metrics_v2
PASS_RATES = {"content": "numbers", "capability": "attempts", "alignment": "rank"}
SIGMA = MetricSettings().sigma
SIGMA_LOGIT = MetricSettings().sigma_logit
PRIOR = MetricSettings().prior

# ------------------------------------------------------------------ building blocks


def _question(k: int) -> str:
    return f"Compute {k} + 10 + 20."


def _trace(k: int, wrong: bool = False) -> tuple[str, str, str]:
    """(response, first novel number, final answer): two novel numbers, then the answer (a copy)."""
    a, b = k + 10, k + 30 + (1 if wrong else 0)
    return f"{k} + 10 = {a}\n{a} + 20 = {b}\nThe answer is {b}.", str(a), str(b)


@dataclass
class Tables:
    samples: list[Sample] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    grades: dict[str, list[str]] = field(default_factory=dict)

    def __iadd__(self, other: Tables) -> Tables:
        self.samples += other.samples
        self.rows += other.rows
        self.grades.update(other.grades)
        return self

    def tokens(self) -> pd.DataFrame:
        return tokens_table(self.rows)

    def attempts(self) -> pd.DataFrame:
        return attempts_table(self.grades)


def dataset(name: str, ks: range | list[int], *, content_rank: int = 1, rank: int | None = None,
            logprob: float = -1.0, noq: float | None = -2.0, wrong: bool = False, gold: bool = True,
            grades: tuple[str, ...] | None = ("correct", "wrong"), tokens: bool = True,
            truncated: bool = False) -> Tables:
    """One candidate dataset: a sample per k (question k, its trace), its tokens rows and attempts.

    content_rank: rank of the two novel numbers (every other token has rank 1); rank: every token's
    rank instead. logprob: every token's log-prob; noq: the question-free pass's (first token NaN,
    as the real pass has no prediction there; None = no such pass; the defaults give IFD 0.5, below
    the IFD filter's 1). grades: the student's attempts on each question (None = no attempts).
    tokens=False: no tokens row at all.
    """
    t = Tables()
    for k in ks:
        resp, a, b = _trace(k, wrong)
        s = sample(name, str(k), _question(k), resp, str(k + 30) if gold else None)
        n = len(tokenize(resp))
        ranks = [rank] * n if rank is not None else [content_rank if resp[x:y] in (a, b) else 1
                                                       for x, y in tokenize(resp)]
        t.samples.append(s)
        if tokens:
            t.rows.append(token_row(s, rank=ranks, logprob=[logprob] * n, truncated=truncated,
                                    logprob_noq=None if noq is None else [float("nan")] + [noq] * (n - 1)))
        if grades is not None:
            t.grades[s.question_hash] = list(grades)
    return t


def _tables(*parts: Tables) -> Tables:
    out = Tables()
    for p in parts:
        out += p
    return out


def _score(t: Tables, metrics: list[str] | None = None, settings: MetricSettings | None = None,
           target: list[str] | None = None, attempts: bool = True) -> ScoreReport:
    return score_tables(pool(*t.samples), t.tokens(), t.attempts() if attempts else None, metrics=metrics,
                        settings=settings or MetricSettings(**PASS_RATES, n_boot=50), target_questions=target,
                        grader=FakeGrader())


def _by_dataset(rep: ScoreReport) -> pd.DataFrame:
    return rep.datasets.set_index("dataset")


def _check_ranges(rep: ScoreReport, name: str) -> int:
    """Every finite value of metric ``name`` in ``rep`` (per dataset, its interval, per sample) is in range.

    Returns how many finite values were checked."""
    m = METRICS[name]
    lo, hi = m.range
    cols = [rep.datasets[name], rep.samples[m.column]]
    cols += [rep.datasets[c] for c in (f"{name}_lo", f"{name}_hi") if c in rep.datasets]
    n = 0
    for col in cols:
        v = col.to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        bad = v[(v < lo) | (v > hi)]
        assert bad.size == 0, f"{name}: {col.name} values {bad.tolist()} outside declared range [{lo}, {hi}]"
        n += v.size
    return n


def _check_reasons(rep: ScoreReport, name: str) -> None:
    """A value is NaN exactly where a non-empty reason is given (per sample and per dataset)."""
    col = METRICS[name].column
    for v, r in zip(rep.samples[col], rep.samples[f"{col}_reason"]):
        if math.isnan(v):
            assert isinstance(r, str) and r.strip(), f"{name}: NaN sample value without a reason"
        else:
            # "no reason" is None (pandas 3's string inference may make it NaN in the report's column)
            assert r is None or (isinstance(r, float) and math.isnan(r)), \
                f"{name}: reason {r!r} given for the finite sample value {v}"
    for _, row in rep.datasets.iterrows():
        r = row["reasons"].get(name)
        if math.isnan(row[name]):
            assert isinstance(r, str) and r.strip(), f"{name}: dataset {row['dataset']} is NaN without a reason"
        else:
            assert r is None, f"{name}: dataset {row['dataset']} has reason {r!r} but value {row[name]}"


def rich_tables() -> Tables:
    """Every ingredient varies: ranks, log-probs (IFD above 1, filtered by default, and below), wrong,
    truncated, no-gold traces, unscored samples, pass rates 0 to 1; so values spread over each
    metric's range."""
    return _tables(
        dataset("A", [1, 2, 3], content_rank=1, logprob=-0.4, noq=-1.2, grades=("correct", "correct")),
        dataset("A", [4], content_rank=3, logprob=-2.0, noq=-0.5, wrong=True, grades=("correct", "wrong")),
        dataset("B", [5, 6], rank=7, logprob=-3.0, noq=-2.0, grades=("wrong", "wrong", "ungradable")),
        dataset("B", [7], content_rank=150, logprob=-1.5, noq=None, truncated=True, grades=("correct", "wrong")),
        dataset("B", [8], gold=False, grades=("wrong", "correct", "correct")),
        dataset("C", [9, 11, 12], content_rank=2, logprob=-0.05, noq=-0.1, grades=None),
        dataset("C", [13], tokens=False, grades=("correct",)),
        dataset("C", [14, 15], content_rank=1, logprob=-0.7, noq=-3.0, wrong=True, grades=("wrong", "correct")),
    )


RICH_SETTINGS = MetricSettings(**PASS_RATES, epsilon=0.3, n_boot=200)

# ------------------------------------------------------------------ (a) declarations and ranges


@pytest.mark.parametrize("name", ALL)
def test_declares_name_version_direction_range(name):
    m = METRICS[name]
    assert m.name == name
    assert isinstance(m.version, str) and m.version.strip()
    assert isinstance(m.description, str) and m.description.strip()
    assert m.direction in DIRECTIONS
    lo, hi = m.range
    assert isinstance(lo, (int, float)) and isinstance(hi, (int, float))
    assert not math.isnan(lo) and not math.isnan(hi) and lo < hi
    info = json.loads(json.dumps(m.info(), allow_nan=False))  # strict JSON, recorded with every score
    assert info["version"] == m.version and info["direction"] == m.direction
    assert info["sample_column"] == m.column
    assert [float(b) for b in info["range"]] == [float(lo), float(hi)]
    assert f"{name} ({m.version})" in directions_footer([name])


@pytest.mark.parametrize("name", ALL)
def test_every_finite_value_within_declared_range(name):
    t = rich_tables()
    rep = _score(t, [name], RICH_SETTINGS)
    assert rep.meta["metrics"][name]["version"] == METRICS[name].version
    n_samples = len(t.samples)
    assert len(rep.samples) == n_samples and set(rep.datasets["dataset"]) == {"A", "B", "C"}
    n_checked = _check_ranges(rep, name)
    assert n_checked >= 3 + n_samples // 2, f"{name}: too few finite values ({n_checked}) to check the range"
    _check_reasons(rep, name)


def test_rich_case_values_span_the_ranges():
    """The range check above is not vacuous: the rich case reaches into each metric's range."""
    rep = _score(rich_tables(), None, RICH_SETTINGS)
    s = rep.samples
    # IFD >= 1 (A's k=4, B's k=5, 6) is filtered by default: NaN with the reason; unfiltered, IFD crosses 1
    for name in ("ifd", "ifd_ppl"):
        assert s[name].max() < 1.0 and (s[f"{name}_reason"] == IFD_FILTER_REASON).sum() == 3
    unfiltered = _score(rich_tables(), ["ifd", "ifd_ppl"], MetricSettings(**PASS_RATES, epsilon=0.3, n_boot=200, ifd_filter=False))
    for name in ("ifd", "ifd_ppl"):
        u = unfiltered.samples[name]
        assert u.max() > 1.0 and u.min() < 1.0 and _check_ranges(unfiltered, name) >= 12  # range [0, inf)
        _check_reasons(unfiltered, name)
    assert s["mean_logprob"].max() == pytest.approx(-0.05) and s["mean_logprob"].min() == pytest.approx(-3.0)
    # RSR: C's rank-2 traces, 4 content tokens of rank 2 + 11 of rank 1 over 15 * 0.05 nats
    assert s["rsr"].max() == pytest.approx(19 / 0.75) and s["rsr"].min() < 1.0
    assert s["m"].max() > 0.25 and s["m"].min() == 0.0  # DMC per sample: aligned traces and unaligned ones
    assert set(s["teacher_accuracy"].dropna()) == {0.0, 1.0}
    assert sorted(set(s["student_fail_rate"].dropna().round(12))) == pytest.approx([0.0, 1 / 3, 0.5, 1.0])
    assert ((s["random"] >= 0.0) & (s["random"] < 1.0)).all()


def test_synthetic_tables_match_the_cached_schemas():
    """The hand-built tables have the columns and types of the real cached tables (dmc.stats.tables)."""
    t = rich_tables()
    toks = pa.Table.from_pandas(t.tokens(), schema=TOKENS_SCHEMA, preserve_index=False)
    att = pa.Table.from_pandas(t.attempts(), schema=ATTEMPTS_SCHEMA, preserve_index=False)
    assert toks.num_rows == len(t.rows) == len(t.samples) - 1 and att.num_rows == 24


# ------------------------------------------------------------------ (b) direction


@dataclass
class DirectionCase:
    """Datasets ``better`` and ``worse`` for a metric, with the values its definition gives them."""

    tables: Tables
    better: str
    worse: str
    expected: dict[str, float]
    target: list[str] | None = None


def _alignment_case() -> DirectionCase:
    # equal capability (every question: 1 of 2 attempts correct, so C_D = C_T = 0.5, R = 1), equal
    # quality; GOOD's novel numbers are the student's argmax (rank 1), BAD's are rank 2 (top_k = 1)
    t = _tables(dataset("GOOD", [1, 2, 3], content_rank=1), dataset("BAD", [4, 5, 6], content_rank=2))
    return DirectionCase(t, "GOOD", "BAD", {"GOOD": 1.0, "BAD": 0.0})


def _difficulty_tables() -> tuple[Tables, list[str]]:
    # equal alignment (rank 1) and quality; target questions have C_T = 0.5; MATCHED's questions are
    # as hard for the student (c = 0.5), EASY's are solved every time (c = 1)
    t = _tables(dataset("MATCHED", [1, 2, 3], grades=("correct", "wrong")),
                dataset("EASY", [4, 5, 6], grades=("correct", "correct")))
    target = _tables(dataset("TARGET", [7, 8, 9], grades=("correct", "wrong")))
    t.grades.update(target.grades)
    return t, [s.question_hash for s in target.samples]


def _difficulty_case_v1() -> DirectionCase:
    t, target = _difficulty_tables()
    r_easy = math.exp(-((1.0 - 0.5) ** 2) / (2 * SIGMA**2))
    return DirectionCase(t, "MATCHED", "EASY", {"MATCHED": 1.0, "EASY": r_easy}, target)


def _difficulty_case_v2() -> DirectionCase:
    t, target = _difficulty_tables()
    # shrunk rates: EASY (6 * 1 + a) / (6 + 2a), target (6 * 0.5 + a) / (6 + 2a) = 0.5 (logit 0)
    c_easy = (6 + PRIOR) / (6 + 2 * PRIOR)
    gap = math.log(c_easy / (1 - c_easy))
    return DirectionCase(t, "MATCHED", "EASY", {"MATCHED": 1.0, "EASY": math.exp(-(gap**2) / (2 * SIGMA_LOGIT**2))},
                         target)


def _rsr_case() -> DirectionCase:
    # same surprisal (1 nat per token); GOOD's tokens are all rank 1, BAD's rank 4: RSR = rank / surprisal
    t = _tables(dataset("GOOD", [1, 2], rank=1), dataset("BAD", [3, 4], rank=4))
    return DirectionCase(t, "GOOD", "BAD", {"GOOD": 1.0, "BAD": 4.0})


def _ifd_tables() -> Tables:
    # Cherry LLM and Superfiltering keep samples with IFD < 1 and select the highest: GOOD's question
    # helps a little (NLL 0.8 with it, 1 without), BAD's a lot (0.5 vs 1)
    return _tables(dataset("GOOD", [1, 2], logprob=-0.8, noq=-1.0), dataset("BAD", [3, 4], logprob=-0.5, noq=-1.0))


def _ifd_case() -> DirectionCase:
    # IFD = mean NLL(y|x) / mean NLL(y)
    return DirectionCase(_ifd_tables(), "GOOD", "BAD", {"GOOD": 0.8, "BAD": 0.5})


def _ifd_ppl_case() -> DirectionCase:
    # PPL(y|x) / PPL(y) = exp(mean NLL(y|x) - mean NLL(y))
    return DirectionCase(_ifd_tables(), "GOOD", "BAD", {"GOOD": math.exp(-0.2), "BAD": math.exp(-0.5)})


def _mean_logprob_case() -> DirectionCase:
    t = _tables(dataset("GOOD", [1, 2], logprob=-0.5), dataset("BAD", [3, 4], logprob=-2.0))
    return DirectionCase(t, "GOOD", "BAD", {"GOOD": -0.5, "BAD": -2.0})


def _teacher_accuracy_case() -> DirectionCase:
    t = _tables(dataset("GOOD", [1, 2, 3]), dataset("BAD", [4, 5, 6], wrong=True))
    return DirectionCase(t, "GOOD", "BAD", {"GOOD": 1.0, "BAD": 0.0})


# metric -> named cases; an empty list declares that the metric has no preferred direction
DIRECTION_CASES: dict[str, dict[str, Callable[[], DirectionCase]]] = {
    "dmc": {"rank-1 content beats rank-2": _alignment_case, "matched difficulty beats easy": _difficulty_case_v1},
    "dmc_v2": {"rank-1 content beats rank-2": _alignment_case, "matched difficulty beats easy": _difficulty_case_v2},
    "rsr": {"low rank beats high rank": _rsr_case},
    "ifd": {"harder to follow (IFD nearer 1) beats question-predicted": _ifd_case},
    "ifd_ppl": {"harder to follow (ratio nearer 1) beats question-predicted": _ifd_ppl_case},
    "mean_logprob": {"familiar beats surprising": _mean_logprob_case},
    "teacher_accuracy": {"correct beats wrong": _teacher_accuracy_case},
    "length": {},
    "student_fail_rate": {},
    "random": {},
}


def _direction_params() -> list:
    out = []
    for name in ALL:
        cases = DIRECTION_CASES.get(name)
        if not cases:  # unknown metrics land here too and fail in the test with a message
            out.append(pytest.param(name, None, id=f"{name}-none"))
        else:
            out += [pytest.param(name, case, id=f"{name}-{case}") for case in cases]
    return out


@pytest.mark.parametrize(("name", "case"), _direction_params())
def test_direction(name, case):
    m = METRICS[name]
    assert name in DIRECTION_CASES, (f"metric {name!r} has no row in DIRECTION_CASES: add a case whose ordering "
                                     "its definition fixes, or an empty one if it has no preferred direction")
    if case is None:
        assert m.direction == "none", f"{name} declares direction {m.direction!r} but has no direction case"
        assert m.info()["direction"] == "none"
        assert "no preferred direction" in directions_footer([name])
        return
    assert m.direction in ("higher", "lower"), f"{name} has a direction case but declares {m.direction!r}"
    c = DIRECTION_CASES[name][case]()
    rep = _score(c.tables, [name], target=c.target)
    _check_ranges(rep, name)
    _check_reasons(rep, name)
    d = _by_dataset(rep)[name]
    for ds, want in c.expected.items():
        assert d[ds] == pytest.approx(want, abs=1e-12), f"{name} on {ds}"
    better, worse = d[c.better], d[c.worse]
    assert (better > worse) if m.direction == "higher" else (better < worse), \
        f"{name} ({m.direction} is better): {c.better}={better} vs {c.worse}={worse}"
    # per sample too: every scored sample of the better dataset beats every one of the worse
    s = rep.samples
    vb = s.loc[s["dataset"] == c.better, m.column].dropna()
    vw = s.loc[s["dataset"] == c.worse, m.column].dropna()
    assert len(vb) and len(vw)
    assert (vb.min() > vw.max()) if m.direction == "higher" else (vb.max() < vw.min())


def test_metrics_with_a_direction_have_cases_and_none_have_none():
    for name in ALL:
        has_cases = bool(DIRECTION_CASES.get(name))
        assert has_cases == (METRICS[name].direction != "none"), name
    assert {n for n in ALL if METRICS[n].direction == "none"} >= {"length", "student_fail_rate", "random"}
    assert METRICS["rsr"].direction == "lower" and METRICS["dmc"].direction == "higher"


# ------------------------------------------------------------------ (c) NaN with a reason


def _nan_case(missing: str) -> Tables:
    """Dataset OK has every ingredient; dataset X lacks the one named."""
    ok = dataset("OK", [1, 2, 3], content_rank=1, logprob=-0.5, noq=-1.0)  # IFD 0.5: kept by the filter
    x = {
        "no tokens row": lambda: dataset("X", [4, 5, 6], tokens=False),
        "no gold": lambda: dataset("X", [4, 5, 6], gold=False),
        "no attempts": lambda: dataset("X", [4, 5, 6], grades=None),
        "no question-free pass": lambda: dataset("X", [4, 5, 6], noq=None),
    }[missing]()
    return _tables(ok, x)


MISSING = ("no tokens row", "no gold", "no attempts", "no question-free pass")
_NO_CAP = "no capability (no gradable attempts on these questions)"
_IFD_NAN = {"no tokens row": ("no token statistics", "no sample with a question-free pass"),
            "no question-free pass": ("no question-free pass", "no sample with a question-free pass")}
_DMC_NAN = {
    "no tokens row": ("no token statistics", "no sample with known quality and alignment"),
    "no gold": ("no gold", "no sample with known quality and alignment"),
    "no attempts": ("no attempts", f"C_D: {_NO_CAP}"),
}
# metric -> {missing ingredient: (reason of each of X's samples, reason of dataset X)}; an ingredient
# not listed is one the metric does not need: it must then score X.
NAN_EXPECTED: dict[str, dict[str, tuple[str, str]]] = {
    "dmc": _DMC_NAN,
    "dmc_v2": _DMC_NAN,
    "rsr": {"no tokens row": ("no token statistics", "no sample with token statistics")},
    "ifd": _IFD_NAN,
    "ifd_ppl": _IFD_NAN,
    "mean_logprob": {"no tokens row": ("no token statistics", "no sample with token statistics")},
    "length": {"no tokens row": ("no token statistics", "no sample with token statistics")},
    "teacher_accuracy": {"no gold": ("no gold", "no sample with known quality")},
    "student_fail_rate": {"no attempts": ("no attempts", _NO_CAP)},
    "random": {},
}


@pytest.mark.parametrize("missing", MISSING)
@pytest.mark.parametrize("name", ALL)
def test_unscorable_gives_nan_with_reason(name, missing):
    assert name in NAN_EXPECTED, (f"metric {name!r} has no row in NAN_EXPECTED: say which missing "
                                  "ingredients make it NaN, and with what reason")
    rep = _score(_nan_case(missing), [name])
    _check_ranges(rep, name)
    _check_reasons(rep, name)
    col = METRICS[name].column
    d = _by_dataset(rep)
    s = rep.samples
    ok, x = s[s["dataset"] == "OK"], s[s["dataset"] == "X"]
    assert ok[col].notna().all() and math.isfinite(d.loc["OK", name])
    assert name not in d.loc["OK", "nan_reasons"] and name not in d.loc["OK", "reasons"]
    expected = NAN_EXPECTED[name].get(missing)
    if expected is None:  # the metric does not need this: it scores X as usual
        assert x[col].notna().all() and math.isfinite(d.loc["X", name]), f"{name} NaN on {missing}"
        assert name not in d.loc["X", "nan_reasons"] and name not in d.loc["X", "reasons"]
        return
    sample_reason, dataset_reason = expected
    assert x[col].isna().all(), f"{name} gave {x[col].tolist()} on samples with {missing}: a silent default"
    assert (x[f"{col}_reason"] == sample_reason).all()
    assert math.isnan(d.loc["X", name])
    assert d.loc["X", "reasons"][name] == dataset_reason
    assert d.loc["X", "nan_reasons"][name] == {sample_reason: 3}


@pytest.mark.parametrize("name", ALL)
def test_no_tables_at_all(name):
    """Scoring before any statistics are computed (tokens and attempts None): a metric that needs a
    table (per NAN_EXPECTED) is NaN with one of its reasons; one that does not still scores."""
    assert name in NAN_EXPECTED, f"metric {name!r} has no row in NAN_EXPECTED"
    t = _tables(dataset("A", [1, 2]), dataset("B", [3]))
    rep = score_tables(pool(*t.samples), None, None, metrics=[name], settings=MetricSettings(**PASS_RATES, n_boot=10),
                       grader=FakeGrader())
    _check_reasons(rep, name)
    col = METRICS[name].column
    d = _by_dataset(rep)
    table_reasons = {NAN_EXPECTED[name][k][0] for k in ("no tokens row", "no attempts", "no question-free pass")
                     if k in NAN_EXPECTED[name]}
    if not table_reasons:  # needs neither table (random; teacher accuracy: gold and the grader)
        assert rep.samples[col].notna().all() and d[name].notna().all()
        return
    assert rep.samples[col].isna().all() and d[name].isna().all()
    assert set(rep.samples[f"{col}_reason"]) <= table_reasons
    assert sum(d.loc["A", "nan_reasons"][name].values()) == 2 and sum(d.loc["B", "nan_reasons"][name].values()) == 1


# ------------------------------------------------------------------ (d) determinism


def _frames(rep: ScoreReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    ds = rep.datasets.copy()
    for c in ("nan_reasons", "reasons"):
        ds[c] = [json.dumps(v, sort_keys=True) for v in ds[c]]
    return ds, rep.samples


def _differing(a: pd.DataFrame, b: pd.DataFrame) -> set[str]:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    out = set()
    for c in a.columns:
        try:
            pd.testing.assert_series_equal(a[c], b[c], check_exact=True)
        except AssertionError:
            out.add(c)
    return out


def test_same_inputs_and_seed_give_identical_values():
    t = rich_tables()
    a = _score(t, None, RICH_SETTINGS)
    b = _score(rich_tables(), None, RICH_SETTINGS)  # rebuilt from scratch: no shared state
    for fa, fb in zip(_frames(a), _frames(b)):
        assert _differing(fa, fb) == set()
    assert json.dumps(a.meta, sort_keys=True, default=str) == json.dumps(b.meta, sort_keys=True, default=str)
    assert set(ALL) <= set(a.datasets.columns)


def test_other_seed_changes_only_random_and_bootstrap_intervals():
    t = rich_tables()
    a = _score(t, None, RICH_SETTINGS)
    b = _score(t, None, MetricSettings(**PASS_RATES, epsilon=0.3, n_boot=200, seed=1))
    (da, sa), (db, sb) = _frames(a), _frames(b)
    assert list(da["dataset"]) == list(db["dataset"])
    changed_d, changed_s = _differing(da, db), _differing(sa, sb)
    intervals = {c for c in da.columns if c.endswith(("_lo", "_hi", "_se"))}  # bootstrap intervals and errors
    assert intervals >= {"dmc_lo", "dmc_hi", "dmc_v2_lo", "dmc_v2_hi"}
    assert changed_s == {"random"}, f"per-sample columns that moved with the seed: {sorted(changed_s)}"
    assert "random" in changed_d and changed_d <= {"random"} | intervals, \
        f"per-dataset columns that moved with the seed: {sorted(changed_d)}"
    assert changed_d & intervals, "the bootstrap intervals should move with the seed"
    # the point values every interval belongs to do not move
    for name in ("dmc", "dmc_v2"):
        pd.testing.assert_series_equal(da[name], db[name], check_exact=True)
    assert (sa["random"] != sb["random"]).all()
    assert a.meta["settings"]["seed"] == 0 and b.meta["settings"]["seed"] == 1
