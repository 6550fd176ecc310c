"""dmc.grading: answer extraction, verifiers, the math-verify worker and its timeouts."""

from __future__ import annotations

import math
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

from dmc.grading import (
    AutoVerifier,
    Grade,
    MathVerifier,
    MathWorker,
    NumericVerifier,
    clean_answer,
    extract_answer,
    get_verifier,
    grade,
    grade_many,
    normalize_text,
    parse_number,
)
from dmc.grading import verifiers as verifiers_mod

TESTS_DIR = Path(__file__).resolve().parent


def hang_verify(gold: str, answer: str, timeout: int) -> dict:
    """Injected into the math worker (by "test_grading:hang_verify") to simulate a hang."""
    time.sleep(60)
    return {"status": "correct", "reason": None}


@pytest.fixture(scope="module")
def worker():
    w = MathWorker()
    yield w
    w.close()


@pytest.fixture
def math_v(worker):
    return MathVerifier(timeout=10.0, worker=worker)


# -- extraction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer", "method"),
    [
        (r"So the result is \boxed{42}.", "42", "boxed"),
        (r"First \boxed{1}, corrected: \boxed{2}", "2", "boxed"),  # last occurrence
        (r"\boxed{\frac{1}{\sqrt{2}}} done", r"\frac{1}{\sqrt{2}}", "boxed"),  # nested braces
        (r"$\boxed{\{1, 2\}}$", r"\{1, 2\}", "boxed"),  # escaped braces inside
        (r"\boxed{-3.5}", "-3.5", "boxed"),
        (r"\boxed{1,234}", "1234", "boxed"),
        (r"\boxed 7 is it", "7", "boxed"),
        (r"\boxed{5!}", "5!", "boxed"),  # a factorial, not an exclamation mark
        ("The answer is 42!", "42", "answer-is"),
        (r"\boxed{5} then \boxed{}", "5", "boxed"),  # an empty box is not an answer
        ("The answer is 5\n#### 72", "72", "hash"),  # boxed > hash > answer-is
        (r"The answer is 5 \boxed{6}", "6", "boxed"),
        ("#### 1\n#### -1,000,000\n", "-1000000", "hash"),
        ("#### Step 1\nadd 2 and 3 to get 5.\n#### Step 2\ndone: 6", "6", "last-number"),  # headings
        ("#### 72\nThe answer is 5", "5", "answer-is"),  # not a closing hash line
        ("The answer is 42. Let me double-check 43.", "42", "answer-is"),
        ("Final answer: -0.75", "-0.75", "answer-is"),
        ("final ANSWER:   x = 7;", "x = 7", "answer-is"),
        ("answer: 3\nmore text\nAnswer: 1,234.", "1234", "answer-is"),
        ("**Final Answer:** $\\frac{1}{2}$.", r"\frac{1}{2}", "answer-is"),
        ("The final answer is\n\n  $12.50\n", "12.50", "answer-is"),
        ("We have 3 - 5 = -2, so 1,234,567 apples.", "1234567", "last-number"),
        ("he paid 3.25 dollars", "3.25", "last-number"),
        ("so it is -7", "-7", "last-number"),
        ("a ratio of 3/4.", "3/4", "last-number"),
        ("we got 1,234, which is even", "1234", "last-number"),
        ("about 1.5e-3 of them", "1.5e-3", "last-number"),
        ("a rise of 50%", "50%", "last-number"),
        ("x\u22125 means \u22125", "-5", "last-number"),  # unicode minus
        (r"truncated \boxed{12", "12", "last-number"),  # unclosed box is not a boxed answer
        ("no digits at all", None, "none"),
        ("", None, "none"),
    ],
)
def test_extract_answer(text, answer, method):
    ex = extract_answer(text)
    assert (ex.answer, ex.method) == (answer, method)


def test_extract_rejects_non_str():
    with pytest.raises(TypeError):
        extract_answer(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  $42$. ", "42"),
        ("**7**", "7"),
        (r"\(x+1\)", "x+1"),
        ("$12", "12"),
        ("1,234,567.5", "1234567.5"),
        ("1{,}000", "1000"),
        ("$a$ and $b$", "$a$ and $b$"),  # two math spans are not one delimited answer
        (r"\{1,2\}", r"\{1,2\}"),  # a set is not a thousands-separated number
    ],
)
def test_clean_answer(raw, clean):
    assert clean_answer(raw) == clean


# -- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "percent"),
    [
        ("42", Fraction(42), False),
        ("-0.125", Fraction(-1, 8), False),
        ("1,234.5", Fraction(2469, 2), False),
        ("3/4", Fraction(3, 4), False),
        ("-6/8", Fraction(-3, 4), False),
        (r"\frac{1}{3}", Fraction(1, 3), False),
        (r"-\dfrac{3}{4}", Fraction(-3, 4), False),
        (r"\frac{-1}{2}", Fraction(-1, 2), False),
        (r"\frac12", Fraction(1, 2), False),
        ("1.5e-3", Fraction(3, 2000), False),
        ("2E3", Fraction(2000), False),
        (r"2.5 \times 10^{3}", Fraction(2500), False),
        ("50%", Fraction(1, 2), True),
        (r"12.5\%", Fraction(1, 8), True),
        ("20 percent", Fraction(1, 5), True),
        (r"\$1,000", Fraction(1000), False),
        ("x = -5", Fraction(-5), False),
        ("12 apples", Fraction(12), False),
        ("60 km/h", Fraction(60), False),
        (r"30^\circ", Fraction(30), False),
        ("(5)", Fraction(5), False),
        (r"\text{7}", Fraction(7), False),
    ],
)
def test_parse_number(text, value, percent):
    p = parse_number(text)
    assert p is not None and p.value == value and p.percent == percent


@pytest.mark.parametrize("text", ["abc", "2x", "2 pi", "1/0", "3 and 4", r"\sqrt{2}", "1,2,3", ""])
def test_parse_number_rejects(text):
    assert parse_number(text) is None


def test_numeric_tolerance():
    v = NumericVerifier()  # rel 1e-6, abs 1e-9
    assert v.verify("1234", "1234.0").status == "correct"
    assert v.verify("1234.1", "1234").status == "wrong"
    assert v.verify("1.0000001", "1").status == "correct"  # 1e-7 relative
    assert v.verify("1.00001", "1").status == "wrong"  # 1e-5 relative
    assert v.verify("1e-10", "0").status == "correct"  # absolute tolerance near zero
    assert v.verify("1e-8", "0").status == "wrong"
    loose = get_verifier("numeric", rel_tol=1e-2)
    assert loose.verify("3.14", "3.14159").status == "correct"
    assert loose.verify("3.0", "3.14159").status == "wrong"
    assert get_verifier("numeric", rel_tol=0, abs_tol=0.5).verify("10.4", "10").status == "correct"
    # exact arithmetic: no float overflow or rounding on huge values
    assert v.verify("1e400", "1e400").status == "correct"
    assert v.verify("10000000000000000000001", "10000000000000000000000").status == "correct"
    assert NumericVerifier(rel_tol=0, abs_tol=0).verify("10000000000000000000001", "1e22").status == "wrong"
    with pytest.raises(ValueError):
        NumericVerifier(rel_tol=-1)


def test_numeric_fractions_and_percent():
    v = NumericVerifier()
    assert v.verify("0.5", "1/2").status == "correct"
    assert v.verify(r"\frac{2}{4}", "0.5").status == "correct"
    assert v.verify("0.333", "1/3").status == "wrong"
    assert v.verify("-3/4", "-0.75").status == "correct"
    assert v.verify("3/4", "-0.75").status == "wrong"
    # one side a percentage: both readings are accepted
    assert v.verify("50", "50%").status == "correct"
    assert v.verify("0.5", "50%").status == "correct"
    assert v.verify("5", "50%").status == "wrong"
    assert v.verify("25%", "0.25").status == "correct"


def test_numeric_unparsable_sides():
    v = NumericVerifier()
    g = v.verify("5", "five")
    assert g.status == "ungradable" and "gold is not a number" in g.reason and math.isnan(g.score)
    g = v.verify("seven", "7")
    assert (g.status, g.reason, g.score) == ("wrong", "answer is not a number", 0.0)


# -- exact / normalized -------------------------------------------------------------------------


def test_exact_and_normalized():
    ex, nz = get_verifier("exact"), get_verifier("normalized")
    assert ex.verify(" Paris ", "Paris").status == "correct"
    assert ex.verify("paris", "Paris").status == "wrong"
    assert nz.verify("paris.", "Paris").status == "correct"
    assert nz.verify(r"$\text{New   York}$", "new york").status == "correct"
    assert nz.verify("x + 1", "x+1").status == "correct"
    assert nz.verify(r"\dfrac{1}{2}", r"\frac{1}{2}").status == "correct"
    assert nz.verify("newyork", "new york").status == "wrong"  # a space between words matters
    assert normalize_text(r"  \textbf{\text{Yes}}. ") == "yes"


def test_registry():
    assert {"exact", "normalized", "numeric", "math", "auto"} <= set(verifiers_mod.VERIFIERS)
    v = NumericVerifier()
    assert get_verifier(v) is v
    with pytest.raises(ValueError, match="unknown verifier 'fuzzy'"):
        get_verifier("fuzzy")


# -- grades -------------------------------------------------------------------------------------


def test_grade_score_and_validation():
    assert Grade("correct").score == 1.0
    assert Grade("wrong").score == 0.0
    assert math.isnan(Grade("ungradable", "timeout").score)
    with pytest.raises(ValueError, match="requires a non-empty reason"):
        Grade("ungradable")
    with pytest.raises(ValueError, match="must be one of"):
        Grade("partial")  # type: ignore[arg-type]


def test_grade_policy():
    g = grade("I give up.", "5")
    assert (g.status, g.reason, g.answer) == ("wrong", "no answer extracted", None)
    g = grade(r"\boxed{5}", None)
    assert (g.status, g.reason, g.answer) == ("ungradable", "no gold", "5")
    g = grade(r"\boxed{5}", "  ")
    assert (g.status, g.reason) == ("ungradable", "empty gold")
    assert grade("#### 1,234", "1234", "numeric").status == "correct"
    assert grade("The answer is 12 apples.", "12").status == "correct"
    assert grade("The answer is 13.", "12", "exact").status == "wrong"
    with pytest.raises(ValueError, match="2 texts but 1 golds"):
        grade_many(["a", "b"], ["1"])


# -- math-verify in the worker ------------------------------------------------------------------


def test_math_equivalence(math_v):
    cases = [
        ("0.5", r"\frac{1}{2}", "correct"),
        ("(x+1)^2", "x^2+2x+1", "correct"),
        ("x^2+2x", "x^2+2x+1", "wrong"),
        (r"2\sqrt{2}", r"\sqrt{8}", "correct"),
        (r"\{2, 1\}", r"\{1, 2\}", "correct"),
        ("3", "x=3", "correct"),
        ("4", "x=3", "wrong"),
    ]
    grades = math_v.verify_many([(a, g) for a, g, _ in cases])
    assert [g.status for g in grades] == [s for _, _, s in cases]
    assert [g.answer for g in grades] == [a for a, _, _ in cases]


def test_math_unparsable_gold_is_ungradable(math_v):
    g = math_v.verify("3", r"\frac{")
    assert g.status == "ungradable" and "could not parse the gold" in g.reason and math.isnan(g.score)


def test_auto_routing(worker, monkeypatch):
    auto = AutoVerifier(worker=worker)
    assert auto.verify("0.5", "1/2").status == "correct"  # numeric
    assert auto.verify("0.50001", "0.5").status == "wrong"  # numeric, strict tolerance
    assert auto.verify("2^{-1}", "0.5").status == "correct"  # non-number answer -> math
    assert auto.verify("yes", "Yes").status == "correct"  # word gold -> normalized
    assert auto.verify("Tuesday", r"\text{Tuesday}").status == "correct"
    assert auto.verify("no", "yes").status == "wrong"
    assert auto.verify("(x+1)^2", "x^2+2x+1").status == "correct"  # math
    assert auto.verify("five", "5").status == "wrong"

    # Without math-verify, non-numeric golds fall back to normalized text comparison.
    monkeypatch.setattr(verifiers_mod, "math_verify_installed", lambda: False)
    plain = AutoVerifier()
    assert plain.math is None
    assert plain.verify("(x+1)^2", "x^2+2x+1").status == "wrong"
    assert plain.verify(r"\text{X + 1}", "x+1").status == "correct"
    g = plain.verify("2^{-1}", "0.5")
    assert (g.status, g.reason) == ("wrong", "answer is not a number")


def test_grade_many_batches_math_calls(worker, monkeypatch):
    calls: list[int] = []
    real = worker.call_many

    def spy(fn, args_list, timeout):
        calls.append(len(args_list))
        return real(fn, args_list, timeout)

    monkeypatch.setattr(worker, "call_many", spy)
    auto = AutoVerifier(worker=worker)
    sq = r"\boxed{(x+1)^2}"
    texts = [sq, r"\boxed{x^2+1}", sq, "#### 7", "no answer", sq]
    golds = ["x^2+2x+1", "x^2+2x+1", "x^2+2x+1", "7", "x", None]
    grades = grade_many(texts, golds, auto)
    assert [g.status for g in grades] == ["correct", "wrong", "correct", "correct", "wrong", "ungradable"]
    assert calls == [2]  # one worker round for the two distinct math pairs


def test_worker_timeout_then_recovers(worker):
    assert worker.call("math:sqrt", [16.0], timeout=10).value == 4.0
    pid = worker.pid
    t0 = time.monotonic()
    res = worker.call("time:sleep", [60], timeout=1.0)
    elapsed = time.monotonic() - t0
    assert res.status == "timeout" and elapsed < 1.0 + 2.0
    assert worker.pid is None  # the hung process was killed
    assert worker.call("math:sqrt", [9.0], timeout=10).value == 3.0
    assert worker.pid not in (None, pid)
    # A hang in the middle of a batch costs only that item.
    res = worker.call_many("math:sqrt", [[4.0], [-1.0], [1.0]], timeout=10)
    assert [r.status for r in res] == ["ok", "error", "ok"]
    assert "ValueError" in res[1].error
    res = worker.call_many("time:sleep", [[0], [60], [0]], timeout=1.0)
    assert [r.status for r in res] == ["ok", "timeout", "ok"]


def test_worker_crash_is_reported(worker):
    res = worker.call_many("os:_exit", [[3]], timeout=10)
    assert res[0].status == "crash" and "code 3" in res[0].error
    assert worker.call("math:sqrt", [4.0], timeout=10).value == 2.0


def test_math_timeout_is_ungradable_and_worker_recovers(monkeypatch):
    # The worker imports this file's hang_verify from the tests directory.
    monkeypatch.setenv("PYTHONPATH", str(TESTS_DIR))
    w = MathWorker()
    try:
        v = MathVerifier(timeout=1.0, worker=w)
        v.verify_fn = "test_grading:hang_verify"
        assert w.call("math:sqrt", [1.0], timeout=10).value == 1.0  # start-up is not timed
        t0 = time.monotonic()
        g = grade(r"\boxed{x^2}", "x^2", v)
        elapsed = time.monotonic() - t0
        assert (g.status, g.reason, g.answer) == ("ungradable", "timeout", "x^2")
        assert math.isnan(g.score)
        assert elapsed < 1.0 + 2.0
        assert w.restarts == 1
        v.verify_fn, v.timeout = MathVerifier.verify_fn, 10.0
        assert grade(r"\boxed{(x+1)^2}", "x^2+2x+1", v).status == "correct"
    finally:
        w.close()


def test_math_verifier_errors_are_ungradable(worker):
    v = MathVerifier(worker=worker)
    v.verify_fn = "math:sqrt"  # wrong signature: raises in the worker
    g = v.verify("1", "2")
    assert g.status == "ungradable" and g.reason.startswith("math-verify error: TypeError")
    v.verify_fn = "builtins:print"  # returns None (and its output must not corrupt the protocol)
    g = v.verify("1", "2")
    assert g.status == "ungradable" and "invalid result" in g.reason
    assert MathVerifier(worker=worker).verify("1", "1.0").status == "correct"


def test_math_worker_is_thread_safe(worker):
    v = MathVerifier(worker=worker)
    out: dict[int, str] = {}

    def run(k: int) -> None:
        out[k] = v.verify(f"{k}/2", f"\\frac{{{2 * k}}}{{4}}").status

    threads = [threading.Thread(target=run, args=(k,)) for k in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert out == {1: "correct", 2: "correct", 3: "correct", 4: "correct"}


def test_no_silent_zero_or_one_for_ungradable(worker):
    """Every path where the grader cannot decide yields NaN with a reason."""
    auto = AutoVerifier(worker=worker)
    broken = MathVerifier(worker=worker)
    broken.verify_fn = "math:sqrt"
    cases = [
        grade(r"\boxed{3}", None, auto),
        grade(r"\boxed{3}", "", auto),
        grade(r"\boxed{3}", "three", "numeric"),
        grade(r"\boxed{3}", r"\frac{", auto),
        broken.verify("3", "3"),
    ]
    for g in cases:
        assert g.status == "ungradable" and g.reason and math.isnan(g.score), g
