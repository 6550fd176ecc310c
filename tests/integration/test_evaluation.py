"""Evaluation: greedy pass@1, pass@k, maj@k, ungradable handling, saved outputs, `dmc eval`."""

from __future__ import annotations

import sys
import json
import math

import pandas as pd
import pytest

from dmc.data.schema import EvalItem
from dmc.evaluation import evaluate, majority, pass_status
from dmc.students.generation import Generation


def _item(i: int, gold: str) -> EvalItem:
    return EvalItem(id=f"q{i}", prompt=({"role": "user", "content": f"question {i}"},), gold=gold)


ITEMS = [_item(0, "7"), _item(1, "12"), _item(3, "5")]

# Scripted answers per question: greedy text, then k=4 sampled texts.
GREEDY = {
    "question 0": "so the answer is 7",        # correct
    "question 1": "The answer is 13.",         # wrong
    "question 3": "I do not know",             # no answer extracted -> wrong
}
SAMPLES = {
    "question 0": ["The answer is 6.", "The answer is 7.", "The answer is 7.", "The answer is 6."],   # tie 6/7 -> 6 first
    "question 1": ["The answer is 12.", "The answer is 12.0", "The answer is 11.", "nothing"],      # 12 == 12.0 majority
    "question 3": ["The answer is 4.", "The answer is 4.", "The answer is 4.", "The answer is 5."],  # pass, maj wrong
}


@pytest.fixture
def scripted(monkeypatch):
    calls = []

    def fake_generate(student, prompts, *, k=1, temperature=0.0, top_p=1.0, max_new_tokens=256, seed=0, batch_size=16):
        calls.append({"k": k, "temperature": temperature, "n": len(prompts), "batch_size": batch_size})
        out = []
        for p in prompts:
            q = p[-1]["content"]
            texts = [GREEDY[q]] * k if temperature == 0 else SAMPLES[q][:k]
            out.append([Generation(text=t, token_ids=[1] * len(t), truncated=(q == "question 3"), mean_surprisal=1.0)
                        for t in texts])
        return out

    monkeypatch.setattr(sys.modules["dmc.evaluation.evaluate"], "generate", fake_generate)
    return calls


class _Net:
    training = False

    def eval(self):
        return self

    def train(self, mode=True):
        self.training = mode
        return self


class _FakeStudent:
    name = "scripted"
    model = _Net()


def test_greedy_accuracy_and_saved_outputs(scripted, tmp_path):
    res = evaluate(_FakeStudent(), ITEMS, verifier="auto", out_dir=tmp_path / "ev")
    assert (res.n, res.n_correct, res.n_wrong, res.n_ungradable) == (3, 1, 2, 0)
    assert res.accuracy == pytest.approx(1 / 3)
    assert res.n_truncated == 1 and res.pass_at_k is None
    assert scripted == [{"k": 1, "temperature": 0.0, "n": 3, "batch_size": 16}]
    df = pd.read_parquet(tmp_path / "ev" / "per_question.parquet")
    assert df["id"].tolist() == ["q0", "q1", "q3"]
    assert df["grade"].tolist() == ["correct", "wrong", "wrong"]
    assert df.loc[2, "reason"] == "no answer extracted"
    rows = [json.loads(x) for x in (tmp_path / "ev" / "per_question.jsonl").read_text().splitlines()]
    assert [r["answer"] for r in rows] == ["7", "13", None]
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["accuracy"] == pytest.approx(1 / 3) and summary["pass_at_k"] is None


def test_pass_at_k_and_majority(scripted):
    items = ITEMS
    res = evaluate(_FakeStudent(), items, k=4, temperature=0.8)
    df = res.per_question.set_index("id")
    assert df["n_samples_correct"].tolist() == [2, 2, 1]
    assert df["pass_at_k"].tolist() == [1.0, 1.0, 1.0]
    assert df["maj_answer"].tolist() == ["6", "12", "4"]  # 6/7 tie: first seen wins; 12 and 12.0 vote together
    assert df["maj_at_k"].tolist() == [0.0, 1.0, 0.0]
    assert res.pass_at_k == 1.0 and res.maj_at_k == pytest.approx(1 / 3)
    assert res.sample_accuracy == pytest.approx(5 / 12)
    assert res.accuracy == pytest.approx(1 / 3)  # accuracy stays greedy pass@1
    assert [c["temperature"] for c in scripted] == [0.0, 0.8]
    with pytest.raises(ValueError, match="temperature > 0"):
        evaluate(_FakeStudent(), items, k=4, temperature=0.0)


def test_ungradable_is_counted_apart():
    assert pass_status(["wrong", "ungradable"]) == "ungradable"
    assert pass_status(["wrong", "wrong"]) == "wrong"
    assert pass_status(["ungradable", "correct"]) == "correct"
    assert majority([None, None], ["wrong", "wrong"]) == (None, "wrong")
    assert majority(["1/2", "0.5", "3"], ["correct", "correct", "wrong"]) == ("1/2", "correct")


def test_ungradable_never_counts_as_wrong(scripted, monkeypatch):
    from dmc.grading import Grade

    def grades(texts, golds, verifier="auto"):
        return [Grade.ungradable("timeout") if "7" in t else Grade.wrong("1") for t in texts]

    monkeypatch.setattr(sys.modules["dmc.evaluation.evaluate"], "grade_many", grades)
    res = evaluate(_FakeStudent(), [ITEMS[0]], k=4, temperature=1.0)
    assert (res.n_correct, res.n_wrong, res.n_ungradable) == (0, 0, 1)
    assert math.isnan(res.accuracy) and res.summary()["accuracy"] is None
    assert res.n_ungradable_pass_at_k == 1 and math.isnan(res.pass_at_k)
    assert res.per_question.loc[0, "reason"] == "timeout"


def test_real_generation_matches_grading_its_own_outputs(tiny_student_factory, tmp_path):
    from dmc.grading import grade_many
    from dmc.students.generation import generate

    st = tiny_student_factory("chatml")
    items = [_item(i, str(i)) for i in range(5)]
    a = evaluate(st, items, max_new_tokens=12, batch_size=2, out_dir=tmp_path / "a")
    b = evaluate(st, items, max_new_tokens=12, batch_size=5)
    assert a.per_question["text"].tolist() == b.per_question["text"].tolist()  # greedy: batch-independent
    texts = [g[0].text for g in generate(st, [it.prompt for it in items], max_new_tokens=12)]
    assert a.per_question["text"].tolist() == texts
    expected = [g.status for g in grade_many(texts, [it.gold for it in items])]
    assert a.per_question["grade"].tolist() == expected
    assert a.n_correct == expected.count("correct") and a.n == 5
    assert not st.model.training


def test_eval_cli(tiny_student_factory, tmp_path):
    from typer.testing import CliRunner

    from dmc.cli import app

    st = tiny_student_factory("chatml")
    st.model.save_pretrained(tmp_path / "student")
    st.tokenizer.save_pretrained(tmp_path / "student")
    ev = tmp_path / "eval.jsonl"
    ev.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i} + 1?", "gold": str(i + 1)}) + "\n" for i in range(3)))
    r = CliRunner().invoke(app, ["eval", "--student", str(tmp_path / "student"), "--eval", str(ev), "--out",
                                 str(tmp_path / "out"), "--eval-max-new-tokens", "8", "--eval-k", "2", "--eval-temperature", "1.0"])
    assert r.exit_code == 0, r.output
    assert "accuracy (greedy pass@1)" in r.output and "pass@2" in r.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n"] == 3 and summary["k"] == 2
    df = pd.read_parquet(tmp_path / "out" / "per_question.parquet")
    assert len(df) == 3 and all(len(x) == 2 for x in df["samples_text"])
    bad = CliRunner().invoke(app, ["eval", "--student", str(tmp_path / "student"), "--eval", str(tmp_path / "none.jsonl")])
    assert bad.exit_code == 2 and "error" in bad.output
