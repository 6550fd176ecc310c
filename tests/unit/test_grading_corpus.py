"""The grading corpus (tests/unit/grading_corpus.jsonl): teachers' answers graded with "auto".

Each line is {response, gold, expected (correct/wrong/ungradable), note}. Every ungradable
grade must carry a reason.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dmc.grading import grade, grade_many
from dmc.grading.mathverify import math_verify_installed

CORPUS = Path(__file__).resolve().parent / "grading_corpus.jsonl"
CASES = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]

pytestmark = pytest.mark.skipif(not math_verify_installed(), reason="math-verify is not installed")


def test_corpus_is_large_enough():
    assert len(CASES) >= 40
    assert {c["expected"] for c in CASES} == {"correct", "wrong", "ungradable"}


@pytest.mark.parametrize("case", CASES, ids=[c["note"] for c in CASES])
def test_corpus_case(case):
    g = grade(case["response"], case["gold"], "auto")
    assert g.status == case["expected"], (case, g)
    if g.status == "ungradable":
        assert g.reason and math.isnan(g.score)


def test_corpus_batched_matches_single():
    """grade_many (one math-verify batch) agrees with the expected statuses too."""
    grades = grade_many([c["response"] for c in CASES], [c["gold"] for c in CASES], "auto")
    assert [g.status for g in grades] == [c["expected"] for c in CASES]


@pytest.mark.parametrize(
    ("text", "gold", "status"),
    [
        ("The answer is 17.", "17", "correct"),
        ("The answer is 1,234.", "1234", "correct"),
        ("The answer is -3.", "3", "wrong"),
        ("Tom has 12 coins. He finds 5. 12 + 5 = 17. The answer is 17.", "17", "correct"),
        ("The answer is [1, 8, 3, 5].", "[1, 8, 3, 5]", "correct"),
        ("The answer is [5, 3, 8, 1].", "[1, 8, 3, 5]", "wrong"),
        ("The answer is [].", "[]", "correct"),
        ("The answer is [5].", "[5]", "correct"),
        ("Reverse it: [1, 8, 3]", "[1, 8, 3, 5]", "wrong"),
    ],
)
def test_lab_answers_grade_as_before(text, gold, status):
    assert grade(text, gold, "auto").status == status
