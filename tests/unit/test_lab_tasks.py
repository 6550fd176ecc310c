"""dmc.lab tasks, teachers and verifiers: exactness, difficulty control, noisy propagation."""

from __future__ import annotations

import random
import re

import pytest
from transformers import AutoTokenizer

from dmc.lab import ALL_FAMILIES, DEV_FAMILIES, HELD_OUT_FAMILIES, TASK_FAMILIES, TEACHERS, extract_answer, get_family, verify
from dmc.lab.pool import standard_pool
from dmc.lab.registry import student_path
from dmc.lab.teachers import get_teacher
from dmc.lab.tokenizer import MODEL_MAX_LENGTH


def _problems(family: str, dist: str, n: int, seed: int = 0):
    fam = get_family(family)
    rng = random.Random(seed)
    return [fam.sample(rng, fam.distributions[dist]) for _ in range(n)]


def _assert_noisy_ends_wrong(family: str) -> None:
    """Every trace of the noisy teacher at error rate 1 has a wrong step and ends on a wrong answer."""
    fam, noisy = get_family(family), get_teacher("noisy")
    for i, p in enumerate(_problems(family, "standard", 40, seed=4)):
        t = noisy(fam, p, random.Random(i), error_rate=1.0)
        assert t.wrong_step is not None and t.answer != p.gold and t.text.endswith(f"The answer is {t.answer}.")


def test_families_and_teachers_exist():
    # the students' pretraining families; development families are never in their corpus
    assert set(TASK_FAMILIES) == {"arith", "listops"}
    assert set(DEV_FAMILIES) == {"wordops", "boolchain", "bubblesort"} and not set(DEV_FAMILIES) & set(TASK_FAMILIES)
    assert set(HELD_OUT_FAMILIES) == {"cups", "weekdays", "letters", "parity"} and not set(HELD_OUT_FAMILIES) & (set(DEV_FAMILIES) | set(TASK_FAMILIES))
    assert len(TEACHERS) >= 6
    assert {"stepwise", "terse", "verbose", "redundant", "noisy", "answer-only"} <= set(TEACHERS)


@pytest.mark.parametrize("answer,gold,ok", [
    ("17", "17", True), ("17.", "17", True), (" 17 ", "17", True), ("1,017", "1017", True),
    ("18", "17", False), ("17.5", "17", False), ("seventeen", "17", False), (None, "17", False), ("", "17", False),
])
def test_arith_verifier(answer, gold, ok):
    assert verify("arith", answer, gold) is ok


@pytest.mark.parametrize("answer,gold,ok", [
    ("[1, 2, 3]", "[1, 2, 3]", True), ("[1,2,3]", "[1, 2, 3]", True), ("[1, 2, 3].", "[1, 2, 3]", True),
    ("[3, 2, 1]", "[1, 2, 3]", False), ("[1, 2]", "[1, 2, 3]", False), ("1, 2, 3", "[1, 2, 3]", False),
    ("[]", "[]", True), (None, "[1]", False),
])
def test_listops_verifier(answer, gold, ok):
    assert verify("listops", answer, gold) is ok


@pytest.mark.parametrize("family,answer,gold,ok", [
    ("wordops", "[ant, bee, cat]", "[ant, bee, cat]", True), ("wordops", "[ant,bee,cat].", "[ant, bee, cat]", True),
    ("wordops", "[bee, ant, cat]", "[ant, bee, cat]", False), ("wordops", "[ant, bee]", "[ant, bee, cat]", False),
    ("wordops", "[ant, bee, zebra]", "[ant, bee, zebra]", None), ("wordops", "[]", "[]", True),
    ("wordops", "ant, bee", "[ant, bee]", False),
    ("boolchain", "true", "true", True), ("boolchain", "True.", "true", True), ("boolchain", " false ", "false", True),
    ("boolchain", "false", "true", False), ("boolchain", "yes", "true", False), ("boolchain", None, "false", False),
    ("boolchain", "maybe", "maybe", None),
    ("bubblesort", "[0, 3, 3, 8]", "[0, 3, 3, 8]", True), ("bubblesort", "[3, 0, 3, 8]", "[0, 3, 3, 8]", False),
    ("cups", "B", "B", True), ("cups", "b.", "B", True), ("cups", "C", "B", False), ("cups", "cup B", "B", False),
    ("cups", None, "A", False), ("cups", "F", "F", None),
    ("weekdays", "Friday", "Friday", True), ("weekdays", "friday.", "Friday", True), ("weekdays", "Fri", "Friday", False),
    ("weekdays", "Monday", "Friday", False), ("weekdays", None, "Friday", False), ("weekdays", "Funday", "Funday", None),
    ("letters", "qpor", "qpor", True), ("letters", "QPOR.", "qpor", True), ("letters", "qpro", "qpor", False),
    ("letters", "q p o r", "qpor", False), ("letters", None, "qpor", False), ("letters", "qp0r", "qp0r", None),
    ("parity", "12", "12", True), ("parity", "12.", "12", True), ("parity", "13", "12", False), ("parity", None, "12", False),
    ("parity", "twelve", "twelve", None),
])
def test_development_family_verifiers(family, answer, gold, ok):
    if ok is None:  # a word outside the family's vocabulary is not a well-formed gold
        with pytest.raises(ValueError, match=family):
            verify(family, answer, gold)
    else:
        assert verify(family, answer, gold) is ok


def test_wordops_is_listops_on_words():
    fam = get_family("wordops")
    p = _problems("wordops", "standard", 1, seed=3)[0]
    assert re.fullmatch(r"Start with the list \[[a-z, ]+\]\..*What is the list now\?", p.question)
    assert not re.search(r"\d", p.question + p.gold)  # no number anywhere: the answer is an ordering
    assert fam.apply((5, 0, 3), ("sort",)) == (0, 3, 5) and fam.fmt_state((0, 3, 5)) == "[ant, dog, fox]"
    assert fam.describe_op(("append", 9)) == "append yak"


def test_boolchain_is_logic_with_verdicts():
    fam = get_family("boolchain")
    assert fam.apply(True, ("and", False)) is False and fam.apply(False, ("or", True)) is True
    assert fam.apply(True, ("xor", True)) is False and fam.apply(False, ("not",)) is True
    # several operations on one line are applied left to right
    assert fam.fmt_step(True, [("not",), ("or", False)], False) == "not (true) or false = false"
    for dist, (lo, hi) in (("easy", (1, 3)), ("hard", (6, 9))):
        for p in _problems("boolchain", dist, 30, seed=1):
            assert lo <= len(p.ops) <= hi and p.gold in ("true", "false")
            assert not re.search(r"\d", p.question + p.gold)  # no number anywhere: the answer is a verdict
            assert fam.fmt_state(fam.solve(p)[-1]) == p.gold
    golds = [p.gold for p in _problems("boolchain", "standard", 200, seed=2)]
    assert 0.3 < golds.count("true") / len(golds) < 0.7  # neither verdict can be guessed from the prior
    noisy = get_teacher("noisy")
    for i, p in enumerate(_problems("boolchain", "standard", 40, seed=4)):
        t = noisy(fam, p, random.Random(i), error_rate=1.0)
        assert t.wrong_step is not None and t.answer != p.gold and t.text.endswith(f"The answer is {t.answer}.")


def test_cups_tracks_a_coin_and_answers_with_a_letter():
    fam = get_family("cups")
    # a swap moves the coin only when it is under one of the two cups
    assert fam.apply(0, ("swap", 0, 2)) == 2 and fam.apply(2, ("swap", 0, 2)) == 0 and fam.apply(1, ("swap", 0, 2)) == 1
    assert fam.fmt_step(0, [("swap", 0, 1), ("swap", 1, 2)], 2) == "swap A and B, swap B and C: C"
    assert fam.explain_step(0, ("swap", 1, 2), 0) == "we swap cups B and C, so the coin stays under A"
    p = _problems("cups", "standard", 1, seed=3)[0]
    assert re.fullmatch(r"There are cups A, B(, C)*(, D)? and [CD], and a coin is under cup [A-D]\."
                        r"( Swap cups [A-D] and [A-D]\.)+ Which cup is the coin under now\?", p.question)
    for dist, n_cups, (lo, hi) in (("easy", (3,), (1, 3)), ("standard", (3, 4), (3, 6)), ("hard", (5,), (7, 10))):
        for p in _problems("cups", dist, 30, seed=1):
            assert p.size in n_cups and lo <= len(p.ops) <= hi and not re.search(r"\d", p.question + p.gold)
            assert all(0 <= a < b < p.size for _, a, b in p.ops) and p.gold == fam.fmt_state(fam.solve(p)[-1])
    golds = [p.gold for p in _problems("cups", "standard", 300, seed=2)]
    assert len(set(golds)) == 4 and max(golds.count(g) for g in set(golds)) / len(golds) < 0.45  # no letter to guess
    _assert_noisy_ends_wrong("cups")


def test_weekdays_moves_a_day_modulo_seven_and_answers_with_a_name():
    fam = get_family("weekdays")
    assert fam.apply(0, ("later", 9)) == 2 and fam.apply(0, ("earlier", 1)) == 6 and fam.apply(3, ("later", 7)) == 3
    assert fam.fmt_step(1, [("later", 6), ("earlier", 11)], 3) == "Tuesday + 6 - 11 = Thursday"
    assert fam.explain_step(6, ("earlier", 1), 5) == "we move it 1 day earlier, so it is on Saturday"
    p = _problems("weekdays", "standard", 1, seed=3)[0]
    assert re.fullmatch(r"A meeting is on [A-Z][a-z]+day\.( It is moved \d+ days? (later|earlier)\.)+"
                        r" On which day of the week is the meeting now\?", p.question)
    for dist, most, (lo, hi) in (("easy", 3, (1, 2)), ("standard", 9, (2, 4)), ("hard", 20, (5, 8))):
        for p in _problems("weekdays", dist, 30, seed=1):
            assert p.size == most and lo <= len(p.ops) <= hi and all(1 <= k <= most for _, k in p.ops)
            assert p.gold == fam.fmt_state(fam.solve(p)[-1]) and not re.search(r"\d", p.gold)
    golds = [p.gold for p in _problems("weekdays", "standard", 700, seed=2)]
    assert len(set(golds)) == 7 and max(golds.count(g) for g in set(golds)) / len(golds) < 0.2  # no day to guess
    _assert_noisy_ends_wrong("weekdays")


def test_bubblesort_has_long_traces_that_fit_the_lab_context():
    fam = get_family("bubblesort")
    assert fam.apply((3, 1, 2), ("cmp", 0, 1)) == (1, 3, 2) and fam.apply((1, 3, 2), ("cmp", 0, 1)) == (1, 3, 2)
    assert fam.fmt_step((3, 1, 2), [("cmp", 0, 1), ("cmp", 1, 1)], (1, 2, 3)) == \
        "compare 3 and 1: swap, compare 3 and 2: swap, [1, 2, 3]"
    p = _problems("bubblesort", "standard", 1, seed=0)[0]
    assert re.fullmatch(r"Sort the list \[[\d, ]+\] by bubble sort\. What is the sorted list\?", p.question)
    # pass p compares the first n - p pairs; the sort stops after a pass without a swap
    passes = [op[2] for op in p.ops]
    assert passes == sorted(passes) and all(passes.count(k) == 5 - k for k in set(passes))
    for dist, n, (lo, hi) in (("easy", 4, (5, 6)), ("standard", 5, (7, 10)), ("hard", 6, (15, 15))):
        for p in _problems("bubblesort", dist, 30, seed=1):
            assert len(p.start) == n and lo <= len(p.ops) <= hi and p.start != tuple(sorted(p.start))
            assert fam.solve(p)[-1] == tuple(sorted(p.start)) and p.gold == fam.fmt_state(sorted(p.start))
    noisy = get_teacher("noisy")
    for i, p in enumerate(_problems("bubblesort", "standard", 40, seed=4)):
        t = noisy(fam, p, random.Random(i), error_rate=1.0)
        assert t.wrong_step is not None and t.answer != p.gold
    # the family exists for long derivations: every pool dataset but answer-only writes hundreds of
    # tokens, and a question with its longest trace still fits the lab students' context
    tok = AutoTokenizer.from_pretrained(student_path("lab-small"))
    lengths = {}
    for spec in standard_pool("bubblesort"):
        rows = [(p.question, get_teacher(spec.teacher)(fam, p, random.Random(i), **spec.params).text)
                for i, p in enumerate(_problems("bubblesort", spec.distribution, 40, seed=5))]
        n_tok = [(len(tok(q)["input_ids"]), len(tok(r)["input_ids"])) for q, r in rows]
        assert max(q + r for q, r in n_tok) + 8 <= MODEL_MAX_LENGTH, spec.name  # + the chat template
        lengths[spec.name] = sum(r for _, r in n_tok) / len(n_tok)
    assert min(v for k, v in lengths.items() if k not in ("answer-only", "easy-stepwise")) > 180
    assert lengths["hard-stepwise"] > 400


def test_malformed_gold_raises():
    with pytest.raises(ValueError, match="arith"):
        verify("arith", "3", "three")
    with pytest.raises(KeyError, match="unknown lab task family"):
        verify("chess", "3", "3")


def test_extract_answer():
    assert extract_answer("Start with 3.\n3 + 4 = 7\nThe answer is 7.") == "7"
    assert extract_answer("The answer is 5.\nwait\nThe answer is [1, 2].") == "[1, 2]"
    assert extract_answer("3 + 4 = 7") is None


@pytest.mark.parametrize("family", sorted(ALL_FAMILIES))
def test_gold_is_the_executed_answer(family):
    fam = get_family(family)
    for p in _problems(family, "standard", 200):
        assert fam.verify(fam.fmt_state(fam.solve(p)[-1]), p.gold)
        assert p.question.endswith("?") and len(p.ops) >= 1


@pytest.mark.parametrize("family", sorted(ALL_FAMILIES))
@pytest.mark.parametrize("teacher", ["stepwise", "terse", "verbose", "redundant", "answer-only", "mixed"])
def test_clean_teachers_end_in_the_gold_answer(family, teacher):
    fam, t = get_family(family), get_teacher(teacher)
    rng = random.Random(1)
    for p in _problems(family, "standard", 100):
        tr = t(fam, p, rng)
        assert tr.text.rstrip().splitlines()[-1].startswith("The answer is ")
        assert extract_answer(tr.text) == tr.answer == p.gold
        assert tr.wrong_step is None


_ARITH_LINE = re.compile(r"^(\d+)((?: [+-] \d+)+) = (\d+)$")


def _check_arith_lines(text: str) -> list[tuple[int, int]]:
    """(claimed start, claimed result) of each equation line, checking that each is correct."""
    out = []
    for line in text.splitlines():
        m = _ARITH_LINE.match(line)
        if m:
            val = int(m.group(1))
            for sign, num in re.findall(r"([+-]) (\d+)", m.group(2)):
                val = val + int(num) if sign == "+" else val - int(num)
            assert val == int(m.group(3)), line
            out.append((int(m.group(1)), val))
    return out


def test_arith_stepwise_and_terse_lines_are_correct_and_chained():
    fam = get_family("arith")
    rng = random.Random(2)
    for p in _problems("arith", "hard", 50):
        step = get_teacher("stepwise")(fam, p, rng)
        lines = _check_arith_lines(step.text)
        assert len(lines) == len(p.ops)  # one line per operation
        assert all(lines[i][1] == lines[i + 1][0] for i in range(len(lines) - 1))
        terse = _check_arith_lines(get_teacher("terse")(fam, p, rng).text)
        assert len(terse) == (len(p.ops) + 1) // 2  # two operations per line: skipped steps


def test_noisy_errors_propagate_to_a_wrong_answer():
    fam = get_family("arith")
    rng = random.Random(3)
    noisy = get_teacher("noisy")
    for p in _problems("arith", "standard", 100):
        tr = noisy(fam, p, rng, error_rate=1.0)
        assert tr.wrong_step is not None and not fam.verify(tr.answer, p.gold)
        assert extract_answer(tr.text) == tr.answer
        lines = [l for l in tr.text.splitlines() if _ARITH_LINE.match(l)]
        # the wrong line is wrong; every later line is correct arithmetic from the wrong value
        bad = lines[tr.wrong_step]
        with pytest.raises(AssertionError):
            _check_arith_lines(bad)
        chained = _check_arith_lines("\n".join(lines[tr.wrong_step + 1 :]))
        assert all(chained[i][1] == chained[i + 1][0] for i in range(len(chained) - 1))
        assert (chained[-1][1] if chained else int(bad.split("= ")[1])) == int(tr.answer)


@pytest.mark.parametrize("family", sorted(ALL_FAMILIES))
def test_noisy_rate_is_respected(family):
    fam, noisy = get_family(family), get_teacher("noisy")
    rng = random.Random(4)
    probs = _problems(family, "standard", 600)
    for rate in (0.0, 0.3, 0.7):
        wrong = sum(not fam.verify(noisy(fam, p, rng, error_rate=rate).answer, p.gold) for p in probs)
        assert abs(wrong / len(probs) - rate) < 0.07


def test_difficulty_is_controlled():
    easy, hard = _problems("arith", "easy", 300), _problems("arith", "hard", 300)
    assert all(1 <= len(p.ops) <= 2 and p.start < 10 and all(o[1] < 10 for o in p.ops) for p in easy)
    assert all(3 <= len(p.ops) <= 5 for p in hard)
    assert sum(o[1] >= 10 for p in hard for o in p.ops) > 0.5 * sum(len(p.ops) for p in hard)
    lo = _problems("listops", "easy", 300)
    hi = _problems("listops", "hard", 300)
    assert all(len(p.start) <= 3 and len(p.ops) <= 2 for p in lo)
    assert all(len(p.start) >= 4 and len(p.ops) >= 3 for p in hi)


def test_generation_is_seeded():
    a = [p.question for p in _problems("listops", "standard", 20, seed=7)]
    b = [p.question for p in _problems("listops", "standard", 20, seed=7)]
    c = [p.question for p in _problems("listops", "standard", 20, seed=8)]
    assert a == b and a != c


def test_listops_operations():
    fam = get_family("listops")
    s = (3, 8, 1)
    assert fam.apply(s, ("reverse",)) == (1, 8, 3)
    assert fam.apply(s, ("sort",)) == (1, 3, 8)
    assert fam.apply(s, ("append", 5)) == (3, 8, 1, 5)
    assert fam.apply(s, ("remove_first",)) == (8, 1)
    assert fam.apply(s, ("remove_last",)) == (3, 8)
    assert fam.apply(s, ("swap",)) == (1, 8, 3)
    assert fam.fmt_state(s) == "[3, 8, 1]" and fam.canonical("[3, 8, 1]") == s


def test_letters_rewrites_a_made_up_word():
    fam = get_family("letters")
    assert fam.apply("rpoq", ("reverse",)) == "qopr" and fam.apply("qopr", ("swap",)) == "ropq"
    assert fam.apply("ropq", ("drop_first",)) == "opq" and fam.apply("opq", ("append", "z")) == "opqz"
    assert fam.fmt_step("rpoq", [("reverse",), ("swap",)], "ropq") == "reverse, swap ends: ropq"
    for dist, sizes, (lo, hi) in (("easy", (3, 4), (1, 2)), ("standard", (4, 5), (2, 4)), ("hard", (6, 7), (5, 7))):
        for p in _problems("letters", dist, 30, seed=1):
            assert p.size in sizes and lo <= len(p.ops) <= hi and not re.search(r"\d", p.question + p.gold)
            assert p.gold == fam.solve(p)[-1] and all(2 <= len(s) <= 8 for s in fam.solve(p))
            assert p.question.startswith(f"Start with the letters {p.start}.")
    _assert_noisy_ends_wrong("letters")


def test_parity_takes_the_branch_of_the_number_reached():
    fam = get_family("parity")
    assert fam.apply(34, ("rule", 7)) == 17 and fam.apply(17, ("rule", 7)) == 24
    assert fam.fmt_step(27, [("rule", 7), ("rule", 7)], 17) == "27 + 7 / 2 = 17"
    assert fam.explain_step(34, ("rule", 7), 17) == "34 is even, so we halve it: 34 / 2 = 17"
    for dist, most, (lo, hi) in (("easy", 20, (1, 2)), ("standard", 50, (2 + 1, 5)), ("hard", 99, (6, 8))):
        for p in _problems("parity", dist, 30, seed=1):
            assert 2 <= p.start <= most and lo <= len(p.ops) <= hi and p.gold == str(fam.solve(p)[-1])
            assert f"Apply this rule {len(p.ops)} time" in p.question
    # a wrong step changes the branches after it: the noisy trace follows the rule from its wrong number
    p = _problems("parity", "standard", 1, seed=3)[0]
    t = get_teacher("noisy")(fam, p, random.Random(0), error_rate=1.0)
    lines = t.text.splitlines()[1:-1]
    for line in lines:
        a, op, b = re.fullmatch(r"(\d+) (/ 2|\+ \d+) = (\d+)", line).groups()
        assert (op == "/ 2") == (int(a) % 2 == 0)
    _assert_noisy_ends_wrong("parity")
