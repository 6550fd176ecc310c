"""dmc.lab build: the pool and eval set on disk, in DESIGN.md §2's schema, deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dmc.lab import TASK_FAMILIES, build_lab, get_family, standard_pool
from dmc.lab.tokenizer import build_tokenizer


def _rows(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab")
    return out, build_lab(out, n=48, n_eval=40, seed=0)


def test_standard_pool_has_at_least_eight_datasets():
    for fam in TASK_FAMILIES:
        pool = standard_pool(fam)
        assert len(pool) >= 8 and len({s.name for s in pool}) == len(pool)
        assert len({s.teacher for s in pool}) >= 6
        assert {s.distribution for s in pool} == {"easy", "standard", "hard"}


def test_layout_and_schema(lab):
    out, paths = lab
    manifest = json.loads((out / "lab.json").read_text())
    assert manifest["seed"] == 0 and set(manifest["families"]) == set(TASK_FAMILIES)
    assert not (out / "chainsum").exists()  # the chain-sum testbed is built only when named
    for fam, lp in paths.items():
        assert lp.eval == out / fam / "eval.jsonl"
        assert set(lp.pool) == {s.name for s in standard_pool(fam)}
        for name, p in lp.pool.items():
            assert p == out / fam / "pool" / f"{name}.jsonl"
            rows = _rows(p)
            assert len(rows) == 48
            for r in rows:
                assert set(r) == {"id", "question", "response", "gold", "meta"}
                assert r["meta"]["family"] == fam and r["meta"]["dataset"] == name
            assert len({r["id"] for r in rows}) == 48
        ev = _rows(lp.eval)
        assert len(ev) == 40 and all(set(r) == {"id", "question", "gold", "meta"} for r in ev)
        assert len({r["question"] for r in ev}) == 40  # distinct eval questions


def test_teacher_correctness_recorded(lab):
    _, paths = lab
    for fam, lp in paths.items():
        f = get_family(fam)
        for name, p in lp.pool.items():
            rows = _rows(p)
            for r in rows:
                ans = r["response"].splitlines()[-1].removeprefix("The answer is ").rstrip(".")
                assert r["meta"]["teacher_correct"] == f.verify(ans, r["gold"])
            acc = sum(r["meta"]["teacher_correct"] for r in rows) / len(rows)
            if name.startswith("noisy"):
                assert acc < 0.95
            else:
                assert acc == 1.0


def test_same_distribution_same_questions(lab):
    _, paths = lab
    for fam, lp in paths.items():
        by_dist: dict[str, list[list[str]]] = {}
        for spec in standard_pool(fam):
            by_dist.setdefault(spec.distribution, []).append([r["question"] for r in _rows(lp.pool[spec.name])])
        for qs in by_dist.values():
            assert all(q == qs[0] for q in qs)
        assert by_dist["easy"][0] != by_dist["standard"][0] != by_dist["hard"][0]
        evq = {r["question"] for r in _rows(lp.eval)}
        assert not evq & {q for qs in by_dist.values() for q in qs[0]}  # no eval question in the pool


def test_deterministic_and_seeded(lab, tmp_path):
    out, _ = lab
    again = build_lab(tmp_path / "a", n=48, n_eval=40, seed=0)
    other = build_lab(tmp_path / "b", family="arith", n=48, n_eval=40, seed=1)
    for fam, lp in again.items():
        for name, p in lp.pool.items():
            assert p.read_bytes() == (out / fam / "pool" / f"{name}.jsonl").read_bytes()
        assert lp.eval.read_bytes() == (out / fam / "eval.jsonl").read_bytes()
    assert set(other) == {"arith"}
    assert other["arith"].eval.read_bytes() != (out / "arith" / "eval.jsonl").read_bytes()
    # the first eval questions do not depend on how many are asked for
    small = build_lab(tmp_path / "c", family="listops", n=4, n_eval=10, seed=0)
    assert _rows(small["listops"].eval) == _rows(out / "listops" / "eval.jsonl")[:10]


def test_traces_are_short_in_tokens(lab):
    _, paths = lab
    tok = build_tokenizer()
    lengths, means = {}, {}
    for fam, lp in paths.items():
        for name, p in lp.pool.items():
            rows = _rows(p)
            n_tok = [len(tok(r["response"])["input_ids"]) for r in rows]
            lengths[(fam, name)], means[(fam, name)] = max(n_tok), sum(n_tok) / len(n_tok)
            assert max(len(tok(r["question"])["input_ids"]) for r in rows) <= 100
    assert max(lengths.values()) <= 192  # the generation budget used to grade students
    assert max(means.values()) <= 130
    assert lengths[("arith", "answer-only")] < lengths[("arith", "stepwise")] < lengths[("arith", "verbose")]


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        build_lab(tmp_path, n=0)
    with pytest.raises(KeyError, match="unknown lab task family"):
        build_lab(tmp_path, family="chess")


def test_families_built_one_at_a_time_add_up_in_the_manifest(tmp_path):
    build_lab(tmp_path, family="wordops", n=4, n_eval=4, seed=0)
    build_lab(tmp_path, family="cups", n=4, n_eval=4, seed=0)
    manifest = json.loads((tmp_path / "lab.json").read_text())
    assert list(manifest["families"]) == ["wordops", "cups"]
    assert manifest["families"]["wordops"]["eval"] == "wordops/eval.jsonl"
    # other arguments describe another build: the manifest lists only what they built
    build_lab(tmp_path, family="cups", n=4, n_eval=4, seed=1)
    manifest = json.loads((tmp_path / "lab.json").read_text())
    assert manifest["seed"] == 1 and list(manifest["families"]) == ["cups"]
