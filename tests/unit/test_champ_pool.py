"""experiments/champ/build_pool.py: CHAMP's conversations as a pool, one dataset per teacher, the
same question across teachers and the eval set, rows with a missing turn left out and counted."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from dmc.data import load_eval_set, load_pool

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "champ" / "build_pool.py"
_spec = importlib.util.spec_from_file_location("champ_build_pool", SCRIPT)
champ = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(champ)

SYSTEM = "You are an expert on mathematics."


def _conv(model: str, problem: str, solution: str | None, summary: str | None, cut: bool = False) -> dict:
    return {"messages": [
        {"role": "System", "text": SYSTEM},
        {"role": "User", "text": f"Solve the following problem.\n\n{problem}"},
        {"role": f"Model.{model}", "text": solution, "error": "LENGTH_CURRENT" if cut else None},
        {"role": "User", "text": "Now, summarize the answer above in one sentence."},
        {"role": f"Model.{model}", "text": summary, "error": "LENGTH_PREVIOUS" if summary is None else None}]}


def _problem(i: int, *, gpt4_cut: bool = False) -> dict:
    convs = {f"{t}|0-Shot": _conv(t, f"What is {i} + {i}?", f"{i} + {i} = {2 * i}.", f"The answer is {2 * i}.")
             for t in champ.TEACHERS}
    if gpt4_cut:
        convs["GPT-4|0-Shot"] = _conv("GPT-4", f"What is {i} + {i}?", f"Let us add {i} and", None, cut=True)
    convs["GPT-3.5|5-Shot"] = _conv("GPT-3.5", "other prompt", "x", "y")  # another variant: not used
    return {"identifier": f"P_Test_{i}", "category": "Test", "_answer": str(2 * i),
            "solution": {"steps": [{"_text": f"Adding, {i} + {i} = {2 * i}."}, {"_text": f"Thus {2 * i}."}]},
            "conversations": convs}


DATA = {"problems": {f"P_Test_{i}": _problem(i, gpt4_cut=(i == 1)) for i in range(3)}}


def test_one_dataset_per_teacher_with_missing_turns_left_out_and_counted():
    pool, evals, skipped = champ.convert(DATA)
    assert set(pool) == {"gpt-4", "gpt-4-turbo", "gpt-3.5", "palm-2", "human"}
    assert {k: len(v) for k, v in pool.items()} == {"gpt-4": 2, "gpt-4-turbo": 3, "gpt-3.5": 3, "palm-2": 3, "human": 3}
    assert dict(skipped) == {("gpt-4", "missing turn (LENGTH_PREVIOUS)"): 1}
    row = pool["gpt-3.5"][2]
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert row["messages"][2]["content"] == "2 + 2 = 4.\n\nThe answer is 4." and row["gold"] == "4"
    assert pool["human"][1]["messages"][2]["content"] == "Adding, 1 + 1 = 2. Thus 2."
    assert [e["id"] for e in evals] == ["P_Test_0", "P_Test_1", "P_Test_2"]
    first_two, _, _ = champ.convert(DATA, n=2)
    assert len(first_two["palm-2"]) == 2 and len(first_two["gpt-4"]) == 1


def test_written_pool_loads_and_shares_questions_with_the_eval_set(tmp_path):
    counts, skipped = champ.write_pool(DATA, tmp_path)
    assert counts["gpt-4"] == 2 and sum(skipped.values()) == 1
    datasets = {d.name: d for d in load_pool([tmp_path / "pool"])}
    assert set(datasets) == set(counts)
    items = load_eval_set(tmp_path / "eval.jsonl")
    eval_q = {it.question_hash for it in items}
    assert len(eval_q) == 3
    for d in datasets.values():  # every teacher's trace answers the eval set's question, not its own variant
        assert {s.question_hash for s in d} <= eval_q
        assert all(s.prompt[0] == {"role": "system", "content": SYSTEM} for s in d)


def test_main_prints_what_was_left_out(tmp_path, capsys):
    src = tmp_path / "champ.json"
    src.write_text(json.dumps(DATA))
    champ.main(["--out", str(tmp_path / "out"), "--champ", str(src), "--n", "2"])
    out, err = capsys.readouterr()
    assert "2 problems" in out and "gpt-4 1" in out
    assert "left out of gpt-4: 1 row (missing turn (LENGTH_PREVIOUS))" in err
