"""`dmc distill` under torchrun (DDP, gloo on CPU) equals the 1-process run at the same global batch,
and the curriculum's re-scoring split across ranks gives the tables one process computes.

The 2-process runs use `python -m torch.distributed.run --nproc-per-node 2` on the lab student
(lab-small, listops) with a dynamic curriculum that re-scores every 2 steps under a softmax policy,
so the mixture depends on the gathered scores.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import dmc.cli.train  # noqa: F401 - registers `dmc distill`
from dmc.cli import app
from dmc.lab import build_lab

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or sys.platform != "linux",
                                reason="needs torch.distributed with gloo (Linux)")

DMC = Path(sys.executable).with_name("dmc")
POOL = ("stepwise", "terse", "noisy70")
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "160"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lab")
    build_lab(root, family="listops", n=16, n_eval=8, seed=0)
    return root / "listops"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _args(lab: Path, out: Path, batch_size: int, *extra: str) -> list[str]:
    return ["distill", *(str(lab / "pool" / f"{n}.jsonl") for n in POOL), "--student", "lab-small",
            "--eval", str(lab / "eval.jsonl"), "--out", str(out), "--cache", str(out.parent / f"{out.name}-cache"),
            "--strategy", "dynamic-dmc", "--policy", "softmax:0.05", "--steps", "6", "--batch-size", str(batch_size),
            "--lr", "3e-4", "--rescore-every", "2", "--probe-size", "2", "--capability-size", "4",
            "--target-size", "4", "--max-samples", "16", "--eval-max-new-tokens", "48",
            "--attempt-max-new-tokens", "48", "--bf16", "false", "--verifier", "normalized", *extra]


def _torchrun(nproc: int, args: list[str], cwd: Path) -> str:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
           "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), str(DMC), *args]
    r = subprocess.run(cmd, cwd=cwd, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return r.stdout


def _results(run: Path) -> dict[str, Any]:
    m = json.loads((run / "metrics.json").read_text())
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    return {"final_eval": {k: m["final_eval"][k] for k in ("n", "n_correct", "accuracy")},
            "global_step": m["global_step"],
            "losses": [(e["step"], e["loss"]) for e in events if e["event"] == "train" and "loss" in e],
            # which datasets were weighted from which batch, and why (timings are wall time)
            "decisions": [{k: v for k, v in e.items() if k not in ("seconds", "timing")}
                          for e in events if e["event"] in ("rescore", "mixture")],
            "rows_drawn": m["curriculum"]["rows_drawn"]}


def _max_weight_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(str(a / "model" / "model.safetensors")), load_file(str(b / "model" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


def _same(one: dict[str, Any], two: dict[str, Any], tol: float) -> None:
    assert two["global_step"] == one["global_step"] == 6
    assert two["final_eval"] == one["final_eval"]
    assert [s for s, _ in two["losses"]] == [s for s, _ in one["losses"]]
    assert [b for _, b in two["losses"]] == pytest.approx([a for _, a in one["losses"]], abs=tol)
    assert len(two["decisions"]) == len(one["decisions"]) == 3  # steps 0 (initial scores), 2 and 4
    for d1, d2 in zip(one["decisions"], two["decisions"]):
        assert {k: v for k, v in d2.items() if k not in ("scores", "mixture", "details")} == \
            {k: v for k, v in d1.items() if k not in ("scores", "mixture", "details")}
        assert d2["scores"] == pytest.approx(d1["scores"], abs=tol)
        assert d2["mixture"] == pytest.approx(d1["mixture"], abs=tol)
    assert two["rows_drawn"] == one["rows_drawn"]


def test_torchrun_two_processes_equal_one_process_at_the_same_global_batch(lab, tmp_path):
    one = tmp_path / "one"
    r = CliRunner().invoke(app, _args(lab, one, 4))
    assert r.exit_code == 0, r.output + repr(r.exception)
    two = tmp_path / "two"
    out = _torchrun(2, _args(lab, two, 2), tmp_path)
    assert out.count("final evaluation") == 1  # rank 0 reports
    a, b = _results(one), _results(two)
    _same(a, b, tol=1e-4)
    # with 2-sample probes, datasets trained on are re-scored from their first training passes, which
    # the two ranks read from their halves of each batch and gather
    sources = [v.get("source") for d in a["decisions"] for v in (d.get("details") or {}).values()]
    assert "probe + training pass" in sources and "probe" in sources
    assert [v.get("source") for d in b["decisions"] for v in (d.get("details") or {}).values()] == sources
    mix = [d["mixture"] for d in a["decisions"]]
    assert any(0.01 < w < 0.99 for m in mix for w in m.values()), f"the mixtures should be mixed: {mix}"
    assert sum(v > 0 for v in a["rows_drawn"].values()) >= 2
    assert _max_weight_diff(one, two) < 1e-4
    cfg = json.loads((two / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["train"]["batch_size"] == 2


@pytest.mark.slow
def test_torchrun_resumed_run_equals_uninterrupted(lab, tmp_path):
    full = tmp_path / "full"
    _torchrun(2, _args(lab, full, 2, "--save-every", "2"), tmp_path)
    part = tmp_path / "part"
    shutil.copytree(full, part)
    shutil.copytree(tmp_path / "full-cache", tmp_path / "part-cache")
    shutil.rmtree(part / "checkpoints" / "checkpoint-6")  # as if killed after step 4's checkpoint
    for p in ("model", "eval", "metrics.json"):
        shutil.rmtree(part / p) if (part / p).is_dir() else (part / p).unlink()
    _torchrun(2, _args(lab, part, 2, "--save-every", "2", "--resume"), tmp_path)
    assert json.loads((part / "config.json").read_text())["resumed_from"].endswith("checkpoint-4")
    _same(_results(full), _results(part), tol=0.0)
    assert _max_weight_diff(full, part) == 0.0


def _rescore_tables_rank(rank: int, world: int, port: int, lab: str, out: str) -> None:
    """One rank of a gloo group: its `rescore_tables`, pickled to `out` by rank 0."""
    import pickle

    import torch.distributed as dist

    from dmc.curriculum.rescore import rescore_tables

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        samples, questions, settings, student = _split_inputs(Path(lab))
        tables = rescore_tables(student, samples, questions, settings)
        # a refinement: attempts at more questions only, no samples (DMCRescorer.refine)
        more = rescore_tables(student, [], questions, settings, needs={"attempts"})
        if rank == 0:
            Path(out).write_bytes(pickle.dumps((tables.tokens, tables.attempts, tables.run, more.tokens,
                                                more.attempts)))
    finally:
        dist.destroy_process_group()


def _split_inputs(lab: Path):
    from dmc.data import load_eval_set, load_pool
    from dmc.scoring import ScoringSettings
    from dmc.stats import AttemptSettings
    from dmc.students import load_student

    pool = load_pool([lab / "pool" / f"{n}.jsonl" for n in POOL])
    samples = [s for d in pool for s in d.samples[:5]]
    questions = [*samples[:7], *load_eval_set(lab / "eval.jsonl")[:4]]
    # sampled attempts in generation batches of 2 questions: each rank must get whole batches
    attempts = AttemptSettings(k=2, temperature=1.0, max_new_tokens=24, batch_size=4, verifier="normalized")
    return samples, questions, ScoringSettings(metrics=("dmc",), attempts=attempts), load_student("lab-small")


def test_rescore_tables_split_across_ranks_equal_one_process(lab, tmp_path):
    import pickle

    import torch.multiprocessing as mp

    from dmc.curriculum.rescore import rescore_tables

    out = tmp_path / "gathered.pkl"
    mp.start_processes(_rescore_tables_rank, args=(2, _free_port(), str(lab), str(out)), nprocs=2,
                       start_method="spawn")
    tokens, attempts, run, more_tokens, more_attempts = pickle.loads(out.read_bytes())
    samples, questions, settings, student = _split_inputs(lab)
    ref = rescore_tables(student, samples, questions, settings)
    assert len({q.question_hash for q in questions}) == 9  # 5 attempt batches (the last one partial): 2 and 3
    assert list(tokens["sample_hash"]) == list(ref.tokens["sample_hash"])
    assert list(tokens["dataset"]) == list(ref.tokens["dataset"])
    for a, b in zip(tokens["logprob"], ref.tokens["logprob"]):
        assert a == pytest.approx(b, abs=1e-5)
    assert [list(x) for x in tokens["rank"]] == [list(x) for x in ref.tokens["rank"]]
    # the same attempts: same random streams, whichever rank generated them
    cols = ["question_hash", "attempt", "text", "grade", "n_tokens"]
    assert attempts[cols].to_dict("records") == ref.attempts[cols].to_dict("records")
    assert run["tokens"]["computed"] == ref.run["tokens"]["computed"]
    assert run["attempts"]["computed"] == ref.run["attempts"]["computed"] == 9
    # a refinement's attempts split across the ranks are a single process's, and nothing else is computed
    assert more_tokens is None and more_attempts[cols].to_dict("records") == ref.attempts[cols].to_dict("records")
