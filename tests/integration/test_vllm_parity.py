"""vLLM against transformers on the same student (`--engine vllm`): token statistics, greedy
attempts and evaluation answers. Runs where vllm and a CUDA GPU are present; skipped otherwise.

Stated tolerances (vLLM's kernels differ from transformers', known upstream): per-token
|Δ logprob| at most 0.05 and 0.01 on average, the true token's rank equal on at least 98% of the
tokens, and the greedy answers equal on at least 90% of the questions.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from dmc.data.schema import CandidateDataset
from dmc.evaluation import evaluate
from dmc.lab import build_lab
from dmc.data import load_eval_set, load_pool
from dmc.stats import AttemptSettings, TokenStatsSettings, compute_attempts, compute_token_stats
from dmc.students import load_student

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                       reason="vllm is not installed (the vllm extra, GPU machines only)"),
    pytest.mark.skipif(not torch.cuda.is_available(), reason="vllm needs a CUDA GPU and none is visible"),
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    build_lab(root, family="listops", n=16, n_eval=16, seed=0)
    lab = root / "listops"
    # vLLM loads the weights from a directory: save the lab student in float32 and load it from there
    built = load_student("lab-small", device="cuda", dtype="float32")
    built.model.save_pretrained(root / "student")
    built.tokenizer.save_pretrained(root / "student")
    student = load_student(str(root / "student"), device="cuda", dtype="float32")
    pool: list[CandidateDataset] = load_pool([lab / "pool" / "stepwise.jsonl", lab / "pool" / "terse.jsonl"])
    return student, [s for d in pool for s in d.samples], load_eval_set(lab / "eval.jsonl")


def test_token_statistics_parity(setup):
    student, samples, _ = setup
    ref = compute_token_stats(student, samples, TokenStatsSettings(), progress=False)
    got = compute_token_stats(student, samples, TokenStatsSettings(engine="vllm"), progress=False)
    assert list(got["sample_hash"]) == list(ref["sample_hash"])
    d = np.concatenate([np.abs(np.asarray(a) - np.asarray(b)) for a, b in zip(got["logprob"], ref["logprob"])])
    same_rank = np.concatenate([np.asarray(a) == np.asarray(b) for a, b in zip(got["rank"], ref["rank"])])
    print(f"vllm parity: tokens {d.size}, max |Δlogprob| {d.max():.3g}, mean {d.mean():.3g}, "
          f"ranks equal {same_rank.mean():.4f}")
    assert d.max() <= 0.05 and d.mean() <= 0.01
    assert same_rank.mean() >= 0.98
    assert all(np.isnan(np.asarray(e)).all() for e in got["entropy"])  # vLLM gives no distribution


def test_greedy_attempts_and_eval_parity(setup):
    student, samples, items = setup
    ref = compute_attempts(student, samples, AttemptSettings(max_new_tokens=64), progress=False)
    got = compute_attempts(student, samples, AttemptSettings(max_new_tokens=64, engine="vllm"), progress=False)
    same = (got["text"].to_numpy() == ref["text"].to_numpy()).mean()
    e_ref = evaluate(student, items, max_new_tokens=64)
    e_got = evaluate(student, items, max_new_tokens=64, engine="vllm")
    agree = np.mean([a == b for a, b in zip(e_got.per_question["answer"], e_ref.per_question["answer"])])
    print(f"vllm parity: attempts equal {same:.3f}, eval answers equal {agree:.3f}, "
          f"accuracy {e_got.accuracy:.3f} vs {e_ref.accuracy:.3f}")
    assert same >= 0.9 and agree >= 0.9
