"""End to end: a small pool scored by a tiny trained student, through the API and the CLI.

The pool (built here): `stepwise` — correct step-by-step traces of easy chain sums the student has
learned; `wrong` — the same questions with a wrong last step (wrong final answer); `hard` —
correct traces of 3-digit chain sums the student has never seen. The eval set (C_T's target) is
six of the easy questions.
"""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from typer.testing import CliRunner

from dmc.data import save_dataset, write_jsonl
from dmc.data.schema import CandidateDataset, Sample
from dmc.metrics import MetricSettings
from dmc.scoring import ScoringSettings, score
from dmc.stats import AttemptSettings

N_Q = 12


def _trace(nums: list[int], wrong_last: bool = False) -> str:
    acc, lines = nums[0], []
    for i, n in enumerate(nums[1:], 1):
        new = acc + n + (1 if wrong_last and i == len(nums) - 1 else 0)
        lines.append(f"{acc} + {n} = {new}")
        acc = new
    return "\n".join(lines + [f"The answer is {acc}."])


def _prompt(nums: list[int]):
    return ({"role": "user", "content": "Compute " + " + ".join(map(str, nums)) + "."},)


def _pool() -> tuple[list[CandidateDataset], list[list[int]]]:
    rng = random.Random(0)
    easy = [[rng.randint(1, 9) for _ in range(4)] for _ in range(N_Q)]
    hard = [[rng.randint(100, 999) for _ in range(4)] for _ in range(N_Q)]

    def ds(name, qs, wrong=False):
        return CandidateDataset(name, [Sample(f"{name}-{i}", _prompt(n), _trace(n, wrong), str(sum(n)), dataset=name)
                                       for i, n in enumerate(qs)])

    return [ds("stepwise", easy), ds("wrong", easy, wrong=True), ds("hard", hard)], easy


def _train(student, samples: list[Sample], steps: int = 250) -> None:
    """Teach the tiny student the stepwise traces (full-batch AdamW; seconds on CPU)."""
    tok, model = student.tokenizer, student.model
    texts = [tok.apply_chat_template(s.messages(), tokenize=False) for s in samples]
    enc = tok(texts, return_tensors="pt", padding=True)
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    student.refresh_fingerprint()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from dmc.students.tiny import tiny_student

    root = tmp_path_factory.mktemp("scoring_lab")
    pool, easy = _pool()
    student = tiny_student("chatml", hidden=32, layers=2, seed=0)
    _train(student, pool[0].samples)
    sdir = root / "student"
    student.model.save_pretrained(sdir)
    student.tokenizer.save_pretrained(sdir)
    paths = []
    for ds in pool:
        p = root / "data" / f"{ds.name}.jsonl"
        save_dataset(ds, p)
        paths.append(p)
    evals = root / "eval.jsonl"
    write_jsonl(evals, [{"id": f"e{i}", "question": _prompt(n)[0]["content"], "gold": str(sum(n))}
                        for i, n in enumerate(easy[:6])])
    return {"root": root, "student": student, "student_dir": sdir, "paths": paths, "eval": evals}


ATT = AttemptSettings(max_new_tokens=40)


def test_dmc_ordering_and_components(lab, tmp_path):
    rep = score(lab["paths"], lab["student"], eval_set=lab["eval"], settings=ScoringSettings(attempts=ATT), out_dir=tmp_path,
                progress=False)
    d = rep.datasets.set_index("dataset")
    assert list(rep.datasets["dataset"]) == ["stepwise", "wrong", "hard"]
    # quality: wrong final answers are 0, the others verified correct
    assert d.loc["stepwise", "Q"] == 1.0 and d.loc["wrong", "Q"] == 0.0 and d.loc["hard", "Q"] == 1.0
    # alignment: the learned traces are predictable; a wrong step is not; unseen hard sums are not
    assert d.loc["stepwise", "A"] >= 0.9
    assert 0.3 < d.loc["wrong", "A"] < d.loc["stepwise", "A"]
    assert d.loc["hard", "A"] < 0.2
    # capability: the student solves the easy questions (and the eval set), not the hard ones
    assert d.loc["stepwise", "C_D"] >= 0.8 and d.loc["hard", "C_D"] == 0.0
    assert d.loc["stepwise", "C_T"] >= 0.8
    assert d.loc["hard", "R"] < 0.01 < d.loc["stepwise", "R"]
    # DMC = R * mean(w * A); w = 1 at the default epsilon = 1 (a wrong step already costs alignment)
    s = rep.samples
    for name in ("stepwise", "wrong", "hard"):
        part = s[s["dataset"] == name]
        assert d.loc[name, "dmc"] == pytest.approx(d.loc[name, "R"] * (part["w"] * part["A"]).mean())
    assert s.loc[s["dataset"] == "wrong", "w"].eq(1.0).all()
    assert d.loc["stepwise", "dmc_lo"] <= d.loc["stepwise", "dmc"] <= d.loc["stepwise", "dmc_hi"]
    # (the wrong step is one decision among the operands and results the student does read right)
    assert d.loc["stepwise", "dmc"] > 0.8 and d.loc["stepwise", "dmc"] - d.loc["wrong", "dmc"] > 0.1
    assert d.loc["wrong", "dmc"] > 0.3 > d.loc["hard", "dmc"]
    # the baselines come from the same statistics
    assert d.loc["stepwise", "mean_logprob"] > d.loc["wrong", "mean_logprob"] > d.loc["hard", "mean_logprob"]
    assert d["ifd"].notna().all() and d["rsr"].notna().all()
    # files, stamped with the student and the versions
    doc = json.loads((tmp_path / "datasets.json").read_text())
    assert doc["meta"]["student"]["fingerprint"] == lab["student"].fingerprint
    assert doc["meta"]["metrics"]["dmc"]["version"] == "dmc-v1.3"
    assert doc["meta"]["eval_set"]["n_questions"] == 6
    assert (tmp_path / "samples.parquet").exists() and (tmp_path / "datasets.csv").exists()


def test_rescore_reuses_cache_without_forward_passes(lab, tmp_path):
    calls = []
    hook = lab["student"].model.model.register_forward_pre_hook(lambda *a, **k: calls.append(1))
    try:
        first = score(lab["paths"], lab["student"], eval_set=lab["eval"], settings=ScoringSettings(attempts=ATT),
                      cache_dir=tmp_path / "cache", progress=False)
        n_first = len(calls)
        calls.clear()
        second = score(lab["paths"], lab["student"], eval_set=lab["eval"], settings=ScoringSettings(attempts=ATT),
                       cache_dir=tmp_path / "cache", progress=False)
    finally:
        hook.remove()
    assert n_first > 0 and len(calls) == 0  # no model forward pass the second time
    assert first.meta["run"]["tokens"]["computed"] == 3 * N_Q
    assert second.meta["run"]["tokens"] == {**second.meta["run"]["tokens"], "computed": 0, "reused": 3 * N_Q}
    assert second.meta["run"]["attempts"]["computed"] == 0
    assert second.datasets["dmc"].tolist() == first.datasets["dmc"].tolist()


def test_metrics_choose_what_is_computed_and_max_samples(lab, tmp_path):
    rep = score(lab["paths"], lab["student"], metrics=["length", "mean_logprob"], max_samples=5,
                cache_dir=tmp_path / "cache", progress=False)
    assert "attempts" not in rep.meta["run"]  # no metric asked for capability: no generation
    assert rep.meta["stats"]["tokens"]["with_ifd"] is False
    assert set(rep.meta["metrics"]) == {"length", "mean_logprob"} and "dmc" not in rep.datasets
    assert rep.datasets["n_samples"].tolist() == [5, 5, 5]
    assert rep.meta["datasets"]["hard"] == {"source": str(lab["paths"][2]), "n_total": N_Q, "n_scored": 5}
    # the same questions are kept across the datasets that share them
    s = rep.samples
    assert set(s.loc[s["dataset"] == "stepwise", "sample_id"].str[-2:]) == set(
        s.loc[s["dataset"] == "wrong", "sample_id"].str[-2:])
    assert math.isfinite(rep.datasets["length"].iloc[0])


def test_likelihood_capability_needs_no_generation(lab, tmp_path):
    """capability=likelihood: the student's log-odds of each gold answer replace its attempts."""
    st = ScoringSettings(metrics=("dmc_v2",), attempts=ATT, metric=MetricSettings(capability="likelihood"))
    rep = score(lab["paths"], lab["student"], eval_set=lab["eval"], settings=st, cache_dir=tmp_path / "cache",
                progress=False)
    assert "attempts" not in rep.meta["run"]
    assert rep.meta["run"]["answers"]["computed"] == 2 * N_Q  # the easy and the hard questions (eval: 6 easy ones)
    d = rep.datasets.set_index("dataset")
    # the student learned the easy sums, not 3-digit ones: the hard set is far harder than the target
    assert abs(d.loc["stepwise", "logit_gap"]) < 1.5 and d.loc["hard", "logit_gap"] < d.loc["stepwise", "logit_gap"] - 3.0
    assert d.loc["hard", "R2"] < 0.2 < d.loc["stepwise", "R2"]
    again = score(lab["paths"], lab["student"], eval_set=lab["eval"], settings=st, cache_dir=tmp_path / "cache",
                  progress=False)
    assert again.meta["run"]["answers"]["computed"] == 0
    assert again.datasets["dmc_v2"].tolist() == rep.datasets["dmc_v2"].tolist()


def test_cli_score_then_select(lab, tmp_path):
    from dmc.cli import app

    runner = CliRunner()
    out = tmp_path / "score"
    args = ["score", *map(str, lab["paths"]), "--student", str(lab["student_dir"]), "--eval", str(lab["eval"]),
            "--out", str(out), "--attempt-max-new-tokens", "40", "--n-boot", "200", "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = [ln for ln in res.output.splitlines() if ln.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["stepwise", "wrong", "hard"]
    assert "dmc (dmc-v1.3): higher is better, range [0, 1]" in res.output
    assert "rsr (rsr-v1): lower is better" in res.output
    assert f"token statistics: {3 * N_Q} samples computed, 0 reused" in res.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and f"token statistics: 0 samples computed, {3 * N_Q} reused" in again.output
    assert "student attempts: 0 questions computed" in again.output
    # the settings flags reach the metrics: a 1-token budget leaves no trace that fits
    tight = runner.invoke(app, [*args[:args.index("--out")], "--out", str(tmp_path / "tight"), "--attempt-max-new-tokens",
                                "40", "--n-boot", "0", "--no-progress", "--budget", "1", "--match-side", "both",
                                "--sigma-logit", "1.5", "--cache", str(out / "cache")])
    assert tight.exit_code == 0, tight.output
    doc = json.loads((tmp_path / "tight" / "datasets.json").read_text())
    assert {k: doc["meta"]["settings"][k] for k in ("budget", "match_side", "sigma_logit")} == {
        "budget": 1, "match_side": "both", "sigma_logit": 1.5}
    assert all(d["dmc"] == 0.0 and d["F"] == 0.0 and d["dmc_v2"] == 0.0 for d in doc["datasets"])

    res = runner.invoke(app, ["select", "--scores", str(out), "--policy", "top1", "--budget", "5"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in (out / "selected.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and {x["source"] for x in lines} == {"stepwise"}
    assert [m["role"] for m in lines[0]["messages"]] == ["user", "assistant"]
    man = json.loads((out / "selected.manifest.json").read_text())
    assert man["versions"]["metrics"]["dmc"] == "dmc-v1.3"
    assert man["versions"]["student_fingerprint"] == json.loads((out / "datasets.json").read_text())["meta"][
        "student"]["fingerprint"]

    res = runner.invoke(app, ["select", "--scores", str(out), "--policy", "samples:top-fraction:0.25", "--out", str(tmp_path / "top.jsonl")])
    assert res.exit_code == 0, res.output
    top = [json.loads(x) for x in (tmp_path / "top.jsonl").read_text().splitlines()]
    assert len(top) == math.ceil(0.25 * 3 * N_Q) and {x["source"] for x in top} == {"stepwise"}

    bad = runner.invoke(app, ["select", "--scores", str(out), "--policy", "topk:x"])
    assert bad.exit_code == 2 and "K must be a positive integer" in bad.output
