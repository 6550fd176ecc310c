"""The `decisions` content selector: what a trace commits to, for any kind of reasoning."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from test_metrics_helpers import FakeGrader, pool, sample, token_row, tokens_table

from dmc.metrics import MetricSettings, ScoringContext
from dmc.metrics.spans import (answer_span, content_token_mask, continuation_spans, decision_spans, enumerations,
                               format_words, units)

WORDS_Q = "Start with the list [dog, cat, bee]. Swap the first and last items. Sort it. What is the list now?"
WORDS_R = "Start with [dog, cat, bee].\nswap ends: [bee, cat, dog]\nsort: [bee, cat, dog]\nThe answer is [bee, cat, dog]."
FORMAT = frozenset({"start", "with", "swap", "ends", "sort", "the", "answer", "is"})


def _texts(r: str, spans) -> list[str]:
    return [r[a:b] for a, b in spans]


def test_units_are_numbers_expressions_and_words():
    got = [(u, w) for _, _, u, w in units("Tom has 1,000 coins: [2, 3] and x1 = 3/4 here")]
    assert got == [("tom", True), ("has", True), ("1000", False), ("coins", True), ("2", False), ("3", False),
                   ("and", True), ("x1", True), ("3/4", False), ("here", True)]


def test_format_words_by_document_frequency():
    rs = ["So the answer is 4.", "So the answer is 7.", "Hence the answer is yes.", "Carry the one.", "So on."]
    assert format_words(rs, 0.5) == frozenset({"so", "the", "answer", "is"})
    assert format_words(rs, 0.8) == frozenset({"the"})
    # a word needs MIN_FORMAT_TRACES traces to count as format: a tiny dataset keeps its words
    assert format_words(rs[:2], 0.2) == frozenset() and format_words(rs[:3], 0.2) == {"the", "answer", "is"}
    assert format_words([], 0.5) == frozenset()
    # numbers are values, never format, however frequent; so are the words of the gold answers
    assert "4" not in format_words(["4", "4 and 4", "4", "4"], 0.5)
    verdicts = ["true and false gives false", "false or true gives true", "not true gives false",
                "true gives true"]
    assert format_words(verdicts, 0.5) == frozenset({"true", "false", "gives"})
    assert format_words(verdicts, 0.5, answers=["false", "True", None]) == frozenset({"gives"})


def test_a_new_order_of_known_items_is_content():
    # every word is copied from the question. The first item is a choice; the swap's result puts cat
    # after bee and dog after cat (bee right after bee reads as a restatement); the sorted list starts
    # a new pair (dog, bee) and then repeats pairs already written, and so does the final answer
    got = _texts(WORDS_R, decision_spans(WORDS_Q, WORDS_R, FORMAT))
    assert got == ["dog", "cat", "dog", "bee"]
    # the `numbers` selector sees nothing in the same trace
    assert not content_token_mask(WORDS_Q, WORDS_R, [0], [len(WORDS_R)], "numbers").any()


def test_arithmetic_new_values_and_operands_read_from_the_question():
    q = "Tom has 3 coins. He finds 5 coins. He loses 2 coins. How many coins does Tom have now?"
    r = "Tom starts with 3 coins.\n3 + 5 = 8\n8 - 2 = 6\nThe answer is 6."
    got = _texts(r, decision_spans(q, r, frozenset({"starts", "with", "the", "answer", "is"})))
    # 3 in a new place, 3 again as an operand, 5 read next to it, the results 8 and 6, the operand 2;
    # "8" restated right after itself and the final "6" are copies
    assert got == ["3", "3", "5", "8", "2", "6"]


def test_boilerplate_is_skipped_but_not_in_the_final_answer():
    q = "Is 7 prime?"
    r = "Check the divisors. The answer is yes."
    fmt = frozenset({"check", "the", "divisors", "answer", "is", "yes"})
    assert _texts(r, decision_spans(q, r, fmt)) == []
    ans = answer_span(r, "yes")
    assert ans == (r.rindex("yes"), r.rindex("yes") + 3)
    assert _texts(r, decision_spans(q, r, fmt, ans)) == ["yes"]
    assert answer_span(r, None) is None and answer_span(r, "no") is None


BOOL_Q = "Start with false. Negate it. AND it with true. Negate it. Is the result true or false?"
BOOL_R = ("Start with false.\nNegate it: not (false) = true\nAND it with true: true and true = true\n"
          "Negate it: not (true) = false\nThe answer is false.")
BOOL_FORMAT = frozenset({"start", "with", "negate", "it", "and", "not", "the", "answer", "is"})


def test_verdicts_are_content_under_continuations_not_decisions():
    """With two values every pair of them is on the page after a step or two, so `decisions` keeps
    only the last result here; `continuations` keeps each verdict the text before it does not show."""
    answer = answer_span(BOOL_R, "false")
    results = [BOOL_R.index("= true") + 2, BOOL_R.index("= true", 40) + 2, BOOL_R.rindex("= false") + 2]
    assert [a for a, _ in decision_spans(BOOL_Q, BOOL_R, BOOL_FORMAT, answer)] == results[2:]
    got = continuation_spans(BOOL_Q, BOOL_R, BOOL_FORMAT, answer)
    at = [a for a, _ in got]
    # all three results, and the two values read into "true and true"; "not (false)" and the second
    # "not (true)" carry the last value over a line break, "AND it with true" quotes the question,
    # and the final answer restates the last result: copies
    assert set(results) <= set(at)
    assert _texts(BOOL_R, got) == ["true", "true", "true", "true", "false"]
    assert BOOL_R.rindex("false") not in at and BOOL_R.index("(false)") + 1 not in at
    assert BOOL_R.index("with true") + 5 not in at


def test_continuations_on_arithmetic_and_repeated_lines():
    q = "Tom has 3 coins. He finds 5 coins. He loses 2 coins. How many coins does Tom have now?"
    r = "3 + 5 = 8\n8 - 2 = 6\nCheck: 8 - 2 = 6\nThe answer is 6."
    fmt = frozenset({"check", "the", "answer", "is"})
    # the operands and results as under `decisions`; the re-check's first value is a choice (which
    # step to check: nothing before it shows what follows "6. Check"), the rest of its line repeats
    # a line already written (copies: looking back finds "8 - 2 = 6"), and the answer is carried
    assert _texts(r, continuation_spans(q, r, fmt)) == ["3", "5", "8", "2", "6", "8"]
    assert _texts(r, decision_spans(q, r, fmt)) == ["3", "5", "8", "2", "6", "8"]
    # a result that differs from what the same context gave before is content again
    r2 = "3 + 5 = 8\n3 + 5 = 9"
    assert _texts(r2, continuation_spans(q, r2, fmt))[-1] == "9"


CUPS_Q = "There are cups A, B and C, and a coin is under cup C. Swap cups A and B. Swap cups A and C. Where is it?"
CUPS_R = ("We start with C and there are 2 steps.\nStep 1: we swap cups A and B, so the coin stays under C.\n"
          "Step 2: we swap cups A and C, so the coin moves to A.\nThe answer is A.")
CUPS_FORMAT = frozenset("we start with and there are steps step swap cups so the coin stays under moves to answer "
                        "is".split())


def test_step_numbers_count_up_from_one_in_their_place():
    def counted(text, fmt=frozenset({"step", "item"})):
        us = units(text)
        return [us[i][2] for i in sorted(enumerations(text, us, fmt))]

    assert counted(CUPS_R, CUPS_FORMAT) == ["1", "2"]  # "2 steps" is the count of the question's moves
    # numbered lines; a place keeps its own count; a jump or a restart is not a count
    assert counted("1. add 3\n2. add 4\n(3) done") == ["1", "2", "3"]
    assert counted("Step 1: 4. Item 1: 5. Step 2: 6. Item 2: 9") == ["1", "1", "2", "2"]
    assert counted("Step 1: x. Step 3: y. Step 4: z. Step 1: w. Step 2: v") == ["1", "2"]
    # a run has two numbers at least: a lone "is 1" is a value
    assert counted("the max is 1. Step 1: x", frozenset({"is", "step"})) == []
    # a number after a content word, or inside a line, is never a count; nor is a word or a decimal
    assert counted("add 1 then add 2") == [] and counted("Step 1.5 then Step x1") == []


def test_step_numbers_are_format_only_when_asked():
    answer = answer_span(CUPS_R, "A")
    plain = _texts(CUPS_R, decision_spans(CUPS_Q, CUPS_R, CUPS_FORMAT, answer))
    counted = _texts(CUPS_R, decision_spans(CUPS_Q, CUPS_R, CUPS_FORMAT, answer, counters=True))
    # the "2" of "Step 2" already reads as a copy of the step count; the "1" of "Step 1" does not
    assert plain == ["C", "2", "1", "A", "A"] and counted == ["C", "2", "A"]
    plain = _texts(CUPS_R, continuation_spans(CUPS_Q, CUPS_R, CUPS_FORMAT, answer))
    counted = _texts(CUPS_R, continuation_spans(CUPS_Q, CUPS_R, CUPS_FORMAT, answer, counters=True))
    assert [u for u in plain if u not in ("1", "2")] == [u for u in counted if u != "2"]
    assert plain.count("1") == 1 and "1" not in counted and counted.count("2") == 1  # the step count stays
    # a step number that is the final answer ("which step ...?") is kept
    r = "1. x\n2. y\nThe answer is 2"
    for spans in (decision_spans, continuation_spans):
        assert _texts(r, spans("Which?", r, frozenset({"the", "answer", "is"}), answer_span(r, "2"), True)) == [
            "x", "y", "2"]
    cs = np.array([m.start() for m in re.finditer(r"\S+", CUPS_R)])
    ce = np.array([m.end() for m in re.finditer(r"\S+", CUPS_R)])
    m_plain = content_token_mask(CUPS_Q, CUPS_R, cs, ce, "decisions", CUPS_FORMAT, answer)
    m_counted = content_token_mask(CUPS_Q, CUPS_R, cs, ce, "decisions", CUPS_FORMAT, answer, counters=True)
    step_one = cs.tolist().index(CUPS_R.index("1:"))
    assert (m_plain.sum(), m_counted.sum()) == (5, 3) and m_plain[step_one] and not m_counted[step_one]


def test_token_mask_maps_decisions_to_tokens():
    r = "[bee, cat]"
    cs, ce = np.array([0, 1, 4, 6, 9]), np.array([1, 4, 6, 9, 10])  # "[", "bee", ", ", "cat", "]"
    mask = content_token_mask("[cat, bee]", r, cs, ce, "decisions")
    assert mask.tolist() == [False, True, False, True, False]


class _WordGrader(FakeGrader):
    def extract(self, text):
        return text.rsplit("The answer is ", 1)[-1].rstrip(".") if "The answer is " in text else None


def test_dmc_is_finite_on_non_numeric_data_with_decisions():
    qs = ["Start with the list [dog, cat, bee]. Reverse it. What is the list now?",
          "Start with the list [owl, ant]. Reverse it. What is the list now?",
          "Start with the list [hen, yak]. Reverse it. What is the list now?"]
    rs = ["Start with [dog, cat, bee].\nreverse: [bee, cat, dog]\nThe answer is [bee, cat, dog].",
          "Start with [owl, ant].\nreverse: [ant, owl]\nThe answer is [ant, owl].",
          "Start with [hen, yak].\nreverse: [yak, hen]\nThe answer is [yak, hen]."]
    golds = ["[bee, cat, dog]", "[ant, owl]", "[yak, hen]"]
    samples = [sample("words", f"w{i}", q, r, g) for i, (q, r, g) in enumerate(zip(qs, rs, golds))]
    # the student misses "cat" wherever it occurs
    tok = tokens_table([token_row(s, rank_of={"cat": 3}) for s in samples])
    for content, expect_nan in (("numbers", True), ("decisions", False)):
        ctx = ScoringContext(pool(*samples), tokens=tok, settings=MetricSettings(content=content),
                             grader=_WordGrader())
        assert (ctx.alignment["A"].isna() if expect_nan else ctx.alignment["A"].notna()).all()
    ctx = ScoringContext(pool(*samples), tokens=tok, settings=MetricSettings(content="decisions"), grader=_WordGrader())
    assert ctx.boilerplate["words"] >= {"start", "with", "reverse", "the", "answer", "is"}
    al = ctx.alignment
    # the animal names are values (words of the gold answers), never format, though frequent
    assert not ctx.boilerplate["words"] & {"bee", "cat", "dog", "ant", "owl"}
    # sample 0: dog (first unit), cat after bee (missed), dog after cat, the answer's bee after dog
    # -> 3 of 4 aligned; sample 1: owl (first unit), owl after ant -> 2 of 2
    assert al.loc[0, "n_content"] == 4 and al.loc[0, "A"] == pytest.approx(0.75)
    assert al.loc[1, "n_content"] == 2 and al.loc[1, "A"] == pytest.approx(1.0)
    assert not math.isnan(float(al["A"].mean()))


def test_format_share_is_a_result_setting():
    with pytest.raises(ValueError):
        MetricSettings(format_share=0.0)
    assert MetricSettings(content="decisions", format_share=1.0).format_share == 1.0
