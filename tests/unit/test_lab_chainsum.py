"""The chain-sum testbed built by the project (`dmc lab build --task chainsum`): its ten datasets,
their question mixes and error rates, determinism, and identity with the reference generator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dmc.cli import app
from dmc.lab import LAB_TASKS, build_lab, chainsum_pool, extract_answer
from dmc.lab.chainsum import MIXES, eval_rows, pool_rows

NAMES = ["stepwise", "terse", "verbose", "noisy30", "noisy70", "answer-only", "column", "reverse",
         "easy-stepwise", "hard-stepwise"]
NOISY = {"noisy30": 0.3, "noisy70": 0.7}

# sha256 of the reference generator's output (../shared/testbeds/chainsum.py OUT --n 8 --n-eval 4
# --seed 0), hashed as in _content_hash: pins question/response/gold to the published testbed
GOLDEN_N8_E4_SEED0 = "a1252950fc99271bd901f02e6a16fe89e1d0119fd4a148177b68bd461f7591e1"

runner = CliRunner()


def _rows(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines()]


def _terms(question: str) -> list[int]:
    return [int(t) for t in question.removeprefix("Compute ").removesuffix(".").split(" + ")]


def _content_hash(root: Path) -> str:
    """Dataset name, question, response and gold of every pool row (datasets sorted by name),
    then question and gold of every eval row."""
    h = hashlib.sha256()
    for p in sorted((root / "pool").glob("*.jsonl")):
        for r in _rows(p):
            h.update(f"{p.stem}\x00{r['question']}\x00{r['response']}\x00{r['gold']}\n".encode())
    for r in _rows(root / "eval.jsonl"):
        h.update(f"eval\x00{r['question']}\x00{r['gold']}\n".encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def pool200() -> dict[str, list[dict]]:
    return pool_rows(200, seed=0)


def test_ten_datasets_with_the_reference_names(pool200):
    assert [s.name for s in chainsum_pool()] == NAMES
    assert list(pool200) == NAMES
    assert "chainsum" in LAB_TASKS
    for name, rows in pool200.items():
        assert len(rows) == 200
        assert [r["id"] for r in rows] == [f"{name}-{i}" for i in range(200)]
        assert all(r["meta"]["teacher"] == name and r["meta"]["terms"] == len(_terms(r["question"])) for r in rows)


def test_same_mix_same_questions(pool200):
    by_mix: dict[str, list[list[str]]] = {}
    for spec in chainsum_pool():
        by_mix.setdefault(spec.distribution, []).append([r["question"] for r in pool200[spec.name]])
    assert {m: len(qs) for m, qs in by_mix.items()} == {"standard": 8, "easy": 1, "hard": 1}
    for qs in by_mix.values():
        assert all(q == qs[0] for q in qs)
    assert by_mix["standard"][0] != by_mix["easy"][0] != by_mix["hard"][0]


def test_gold_is_the_sum_and_clean_traces_reach_it(pool200):
    for name, rows in pool200.items():
        for r in rows:
            assert r["gold"] == str(sum(_terms(r["question"])))
            answer = extract_answer(r["response"])
            assert r["meta"]["teacher_correct"] == (answer == r["gold"])
            if name not in NOISY:
                assert answer == r["gold"], (name, r["id"])
                assert r["meta"]["wrong_step"] is None


def test_noisy_error_rates(pool200):
    for name, rate in NOISY.items():
        rows = pool200[name]
        wrong = [extract_answer(r["response"]) != r["gold"] for r in rows]
        assert abs(sum(wrong) / len(rows) - rate) <= 0.1, (name, sum(wrong))
        # exactly the traces with a wrong step end wrong, and the slip shows in that step's line
        assert wrong == [r["meta"]["wrong_step"] is not None for r in rows]
        for r in rows:
            if r["meta"]["wrong_step"] is not None:
                a, rest = r["response"].splitlines()[1 + r["meta"]["wrong_step"]].split(" + ")
                b, c = rest.split(" = ")
                assert int(a) + int(b) != int(c)


def test_question_mixes(pool200):
    easy = [_terms(r["question"]) for r in pool200["easy-stepwise"]]
    assert all(len(t) == 2 and all(1 <= x <= 9 for x in t) for t in easy)
    hard = [_terms(r["question"]) for r in pool200["hard-stepwise"]]
    assert {len(t) for t in hard} == {4, 5}
    terms = [x for t in hard for x in t]
    assert all(1 <= x <= 99 for x in terms)
    assert 0.6 <= sum(x >= 10 for x in terms) / len(terms) <= 0.8  # two-digit mix: 70% two-digit terms
    std = [_terms(r["question"]) for r in pool200["stepwise"]]
    assert {len(t) for t in std} == {2, 3, 4} and any(x >= 10 for t in std for x in t)
    assert MIXES["standard"].steps == (2, 4) and MIXES["standard"].size == (1, 2)


def test_eval_set():
    ev = eval_rows(50, seed=0)
    assert [r["id"] for r in ev] == [f"eval-{i}" for i in range(50)]
    assert all(set(r) == {"id", "question", "gold", "meta"} for r in ev)
    assert all(r["gold"] == str(sum(_terms(r["question"]))) and 2 <= len(_terms(r["question"])) <= 4 for r in ev)
    assert eval_rows(10, seed=0) == ev[:10]
    assert [r["question"] for r in eval_rows(50, seed=1)] != [r["question"] for r in ev]


def test_build_layout_manifest_and_determinism(tmp_path):
    paths = build_lab(tmp_path / "a", family="chainsum", n=12, n_eval=5, seed=0)
    lp = paths["chainsum"]
    assert set(paths) == {"chainsum"} and set(lp.pool) == set(NAMES)
    assert lp.eval == tmp_path / "a" / "chainsum" / "eval.jsonl" and len(_rows(lp.eval)) == 5
    assert all(p == tmp_path / "a" / "chainsum" / "pool" / f"{n}.jsonl" and len(_rows(p)) == 12
               for n, p in lp.pool.items())
    manifest = json.loads((tmp_path / "a" / "lab.json").read_text())
    assert (manifest["seed"], manifest["n"], manifest["n_eval"]) == (0, 12, 5)
    entry = manifest["families"]["chainsum"]
    assert entry["eval"] == "chainsum/eval.jsonl" and list(entry["pool"]) == NAMES
    assert entry["pool"]["noisy70"] == {"path": "chainsum/pool/noisy70.jsonl", "teacher": "stepwise",
                                        "distribution": "standard", "params": {"error_rate": 0.7}}
    again = build_lab(tmp_path / "b", family="chainsum", n=12, n_eval=5, seed=0)["chainsum"]
    other = build_lab(tmp_path / "c", family="chainsum", n=12, n_eval=5, seed=1)["chainsum"]
    for name, p in lp.pool.items():
        assert again.pool[name].read_bytes() == p.read_bytes()
        assert other.pool[name].read_bytes() != p.read_bytes()
    assert again.eval.read_bytes() == lp.eval.read_bytes()
    # the first questions do not depend on n (as in the reference generator)
    assert [r["question"] for r in pool_rows(4, seed=0)["terse"]] == [r["question"] for r in _rows(lp.pool["terse"])][:4]


def test_matches_the_reference_generator(tmp_path):
    build_lab(tmp_path, family="chainsum", n=8, n_eval=4, seed=0)
    assert _content_hash(tmp_path / "chainsum") == GOLDEN_N8_E4_SEED0


def test_cli_build_and_list(tmp_path):
    r = runner.invoke(app, ["lab", "build", "--out", str(tmp_path), "--task", "chainsum", "--n", "5", "--n-eval", "3"])
    assert r.exit_code == 0, r.output
    assert sorted(p.stem for p in (tmp_path / "chainsum" / "pool").glob("*.jsonl")) == sorted(NAMES)
    assert len(_rows(tmp_path / "chainsum" / "pool" / "stepwise.jsonl")) == 5
    assert len(_rows(tmp_path / "chainsum" / "eval.jsonl")) == 3
    assert not (tmp_path / "arith").exists()
    r = runner.invoke(app, ["lab", "list"])
    assert r.exit_code == 0, r.output
    assert "family chainsum" in r.output and "hard-stepwise: style stepwise, questions hard" in r.output
