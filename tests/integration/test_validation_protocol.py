"""validate() end to end on a tiny in-process student: E1, E2 and E3 plumbing, caching and files."""

import dataclasses
import json

import pandas as pd
import pytest
import torch

from dmc.data.schema import CandidateDataset, EvalItem, Sample
from dmc.students import tiny_student
from dmc.settings import from_dict
from dmc.validation import ValidateConfig, validate
from dmc.validation import files
from dmc.validation.pilots import PilotCache


def _q(i: int):
    return ({"role": "user", "content": f"What is {i} plus {i + 1}?"},)


def _dataset(name: str, style: str, n: int = 6) -> CandidateDataset:
    out = []
    for i in range(n):
        a = 2 * i + 1
        resp = {"step": f"{i} plus {i + 1} is {a}. The answer is {a}.",
                "terse": f"The answer is {a}.",
                "wrong": f"{i} plus {i + 1} is {a + 1}. The answer is {a + 1}."}[style]
        out.append(Sample(id=f"{i}", prompt=_q(i), response=resp, gold=str(a)))  # dataset name set by validate
    return CandidateDataset(name, out)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("validate")
    pool = [_dataset("step", "step"), _dataset("terse", "terse"), _dataset("wrong", "wrong")]
    evals = [EvalItem(id=f"e{i}", prompt=_q(i + 20), gold=str(2 * (i + 20) + 1)) for i in range(4)]
    cfg = from_dict(ValidateConfig, {
        "train": {"steps": 2, "batch_size": 2, "eval_max_new_tokens": 6, "eval_batch_size": 8, "learning_rate": 1e-2},
        "pilot_samples": 4, "n_boot": 50, "e3_steps": 4, "e3_eval_every": 2, "workers": 1,
        "scoring": {"max_samples": 4, "attempts": {"max_new_tokens": 6}, "metric": {"n_boot": 50}},
        "curriculum": {"rescore_every": 2, "probe_size": 2, "target_size": 2}})
    student = tiny_student(seed=0)
    res = validate(student, pool, evals, out / "run", cfg, cache_dir=out / "stats", progress=False, command="test")
    return out, pool, evals, cfg, student, res


def test_e1_pilots_and_tables(run):
    out, pool, evals, cfg, student, res = run
    d = out / "run"
    e1 = json.loads((d / files.E1_JSON).read_text())
    assert [(p["dataset"], p["seed"], p["status"]) for p in e1["pilots"]] == [
        ("step", 0, "done"), ("terse", 0, "done"), ("wrong", 0, "done")]
    metrics = set(e1["metrics"])
    assert {"dmc", "rsr", "ifd", "mean_logprob", "length", "teacher_accuracy", "random"} <= metrics
    assert e1["metrics"]["rsr"]["direction"] == "lower" and e1["metrics"]["dmc"]["direction"] == "higher"
    corr = pd.read_csv(d / files.E1_CORRELATIONS)
    assert len(corr) == 3 * len(metrics)
    # each correlation is defined or carries the reason it is not
    assert ((corr["rho"].notna()) | (corr["reason"].notna())).all()
    pilots = pd.read_parquet(d / files.E1_PILOTS)
    assert list(pilots.columns[:3]) == ["dataset", "seed", "accuracy"]
    doc = json.loads((d / files.SCORES_DIR / "datasets.json").read_text())
    by = {r["dataset"]: r for r in doc["datasets"]}
    # the metrics score at the budget the pilots are evaluated at, and the run records it
    assert doc["meta"]["settings"]["budget"] == 6
    assert json.loads((d / files.MANIFEST).read_text())["config"]["scoring"]["metric"]["budget"] == 6
    for r in pilots.itertuples():
        assert r.teacher_accuracy == pytest.approx(by[r.dataset]["teacher_accuracy"])
        assert 0.0 <= r.accuracy <= 1.0
    # teacher accuracy reflects the data: the 'wrong' teacher's answers are all wrong
    assert by["wrong"]["teacher_accuracy"] == 0.0 and by["step"]["teacher_accuracy"] == 1.0
    # every pilot trained on the same number of samples and steps
    for p in e1["pilots"]:
        r = PilotCache(d / files.PILOTS_DIR).load(p["key"])
        assert r["n_train_samples"] == 4 and r["global_step"] == 2 and r["n_eval"] == 4


def test_e2_selects_by_direction_and_reuses_e1_pilots(run):
    out, pool, evals, cfg, student, res = run
    scores = res.scores.datasets.set_index("dataset")
    e1_keys = {p["dataset"]: p["key"] for p in res.e1["pilots"]}
    for sel in res.e2["selectors"]:
        m = sel["metric"]
        vals = scores[m].dropna()
        if not len(vals):
            assert sel["error"]
            continue
        best = vals.idxmin() if sel["direction"] == "lower" else vals.idxmax()
        assert sel["chosen"] == [best], m
        # top1 trains on exactly E1's pilot set of the chosen dataset: same pilot, no new run
        assert sel["per_seed"][0]["key"] == e1_keys[best]
        assert sel["accuracy"] == pytest.approx(next(p["accuracy"] for p in res.e1["pilots"] if p["dataset"] == best))
    assert res.e2["reference"]["oracle"]["dataset"] in {"step", "terse", "wrong"}


def test_e3_strategies(run):
    out, pool, evals, cfg, student, res = run
    st = res.e3["strategies"]
    assert list(st) == ["uniform", "static-dmc", "dynamic-dmc"]
    for name, s in st.items():
        assert [p["step"] for p in s["curve"]] == [0, 2, 4], name
        assert s["per_seed"][0]["status"] == "done"
    uni = st["uniform"]["mixtures"]
    assert len(uni) == 1 and all(w == pytest.approx(1 / 3) for w in uni[0]["mixture"].values())
    best = res.scores.datasets.set_index("dataset")["dmc"].idxmax()
    static = st["static-dmc"]["mixtures"]
    assert len(static) == 1 and static[0]["mixture"][best] == pytest.approx(1.0)
    dyn = st["dynamic-dmc"]
    assert [e["step"] for e in dyn["scores"]] == [0, 2]  # re-scored at the start and every 2 steps
    assert set(dyn["scores"][0]["scores"]) == {"step", "terse", "wrong"}
    assert sum(dyn["rows_drawn"].values()) == 4 * 2  # steps x batch
    # the same total steps for every strategy
    cache = PilotCache(out / "run" / files.PILOTS_DIR)
    assert [cache.load(s["per_seed"][0]["key"])["global_step"] for s in st.values()] == [4, 4, 4]


def test_rerun_is_served_from_the_cache(run, monkeypatch):
    out, pool, evals, cfg, student, res = run
    import dmc.validation.protocol as protocol

    def boom(payload, run_dir):
        raise AssertionError("a finished pilot was rerun")

    monkeypatch.setattr(protocol, "sft_pilot", boom)
    monkeypatch.setattr(protocol, "strategy_pilot", boom)
    again = validate(student, pool, evals, out / "run", cfg, cache_dir=out / "stats", progress=False)
    assert {p["status"] for p in again.e1["pilots"]} == {"cached"}
    assert {s["per_seed"][0]["status"] for s in again.e3["strategies"].values()} == {"cached"}
    assert [p["accuracy"] for p in again.e1["pilots"]] == [p["accuracy"] for p in res.e1["pilots"]]
    assert {k: v["final_accuracy"] for k, v in again.e3["strategies"].items()} == \
        {k: v["final_accuracy"] for k, v in res.e3["strategies"].items()}
    # the logging interval does not change a result, so it does not rerun finished pilots either
    quieter = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, logging_steps=1), workers=2)
    again = validate(student, pool, evals, out / "run", quieter, cache_dir=out / "stats", progress=False)
    assert {p["status"] for p in again.e1["pilots"]} == {"cached"}
    manifest = json.loads((out / "run" / files.MANIFEST).read_text())
    assert manifest["student"]["fingerprint"] == student.fingerprint
    assert manifest["pool"]["sizes"] == {"step": 6, "terse": 6, "wrong": 6}
    assert manifest["environment"]["torch"] == torch.__version__ and manifest["environment"]["peft"] is not None


def test_config_errors():
    with pytest.raises(ValueError, match="unknown experiments"):
        ValidateConfig(experiments=("e4",))
    with pytest.raises(ValueError, match="unknown strategy"):
        ValidateConfig(e3_strategies=("sometimes",))
    with pytest.raises(ValueError, match="unknown setting.*train.stepz"):
        from_dict(ValidateConfig, {"train": {"stepz": 3}})
    with pytest.raises(ValueError, match="at least one seed"):
        ValidateConfig(seeds=())
