"""The vLLM adapter's pure parts, with stand-ins shaped like vLLM's output classes
(RequestOutput.prompt_logprobs: a list of {token_id: Logprob(logprob, rank, decoded_token)}, None
at position 0; CompletionOutput: index, token_ids, logprobs, finish_reason), and the engine checks."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from dmc.scoring import ScoringSettings
from dmc.stats import AttemptSettings, TokenStatsSettings, compute_attempts, compute_token_stats
from dmc.students.vllm_engine import (ENTROPY_REASON, check_engine, generation_from_completion, model_source,
                                      span_stats_from_prompt_logprobs)


@dataclass
class Logprob:  # vllm.logprobs.Logprob
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:  # vllm.outputs.CompletionOutput (the fields the adapter reads)
    index: int
    token_ids: list[int]
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None


def test_prompt_logprobs_become_span_statistics():
    ids = [5, 7, 9, 11]
    plp = [None,
           {7: Logprob(-0.5, 1, "a")},
           {9: Logprob(-2.0, 3, "b"), 4: Logprob(-0.1, 1, "c")},  # the prompt token and the top-1
           {11: Logprob(-1.25, 2, "d")}]
    st = span_stats_from_prompt_logprobs(ids, 2, 4, plp)
    assert st["token_ids"].tolist() == [9, 11] and st["token_ids"].dtype == np.int32
    assert st["logprob"].tolist() == [-2.0, -1.25] and st["logprob"].dtype == np.float32
    assert st["rank"].tolist() == [3, 2] and st["rank"].dtype == np.int32
    assert np.isnan(st["entropy"]).all() and len(st["entropy"]) == 2
    assert "entropy unavailable" in ENTROPY_REASON
    # an empty span and a token missing from its position's dict (NaN, rank 0: never a made-up value)
    assert len(span_stats_from_prompt_logprobs(ids, 4, 4, plp)["token_ids"]) == 0
    miss = span_stats_from_prompt_logprobs(ids, 1, 2, [None, {8: Logprob(-0.2, 1)}, None, None])
    assert math.isnan(miss["logprob"][0]) and miss["rank"][0] == 0


def test_prompt_logprobs_shape_errors():
    with pytest.raises(ValueError, match="1 <= start"):
        span_stats_from_prompt_logprobs([1, 2], 0, 2, [None, {2: Logprob(-1.0, 1)}])
    with pytest.raises(ValueError, match="returned 1 prompt log-probabilities for 2 tokens"):
        span_stats_from_prompt_logprobs([1, 2], 1, 2, [None])


def test_completion_becomes_generation(tiny_student):
    stops = set(tiny_student.stop_token_ids)
    stop = min(stops)
    body = tiny_student.tokenizer.encode("12", add_special_tokens=False)
    toks = [*body, stop]
    lps = [{t: Logprob(-0.5 * (i + 1), 1)} for i, t in enumerate(toks)]
    g = generation_from_completion(tiny_student, CompletionOutput(0, toks, lps, "stop"), stops)
    assert g.token_ids == toks and not g.truncated and g.text == tiny_student.tokenizer.decode(body)
    assert g.mean_surprisal == pytest.approx(np.mean([0.5 * (i + 1) for i in range(len(toks))]))
    cut = generation_from_completion(tiny_student, CompletionOutput(0, body, lps[:len(body)], "length"), stops)
    assert cut.truncated and cut.token_ids == body
    none = generation_from_completion(tiny_student, CompletionOutput(0, [], [], "length"), stops)
    assert none.mean_surprisal is None


def test_engine_is_a_result_setting():
    assert TokenStatsSettings(engine="vllm").settings_hash != TokenStatsSettings().settings_hash
    assert AttemptSettings(engine="vllm").settings_hash != AttemptSettings().settings_hash
    with pytest.raises(ValueError, match="engine"):
        AttemptSettings(engine="llama.cpp")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None and torch.cuda.is_available(),
                    reason="vllm and a GPU are present here")
def test_vllm_engine_unavailable_is_one_clear_error(tiny_student):
    with pytest.raises(ValueError) as e:
        check_engine("vllm")
    msg = str(e.value)
    assert "\n" not in msg and ("vllm is not installed" in msg or "needs a CUDA GPU" in msg)
    s = ScoringSettings(tokens=TokenStatsSettings(engine="vllm"), attempts=AttemptSettings(engine="vllm"))
    with pytest.raises(ValueError, match="--engine vllm"):
        compute_token_stats(tiny_student, [], s.tokens, progress=False)
    with pytest.raises(ValueError, match="--engine vllm"):
        compute_attempts(tiny_student, [], s.attempts, progress=False)
    check_engine("transformers")
    # through the scoring path, the error comes before the cost plan times the student
    from dmc.scoring import compute_tables
    planned = []
    with pytest.raises(ValueError, match="--engine vllm"):
        compute_tables(tiny_student, [], s, on_plan=planned.append)
    assert planned == []


def test_model_source(tiny_student):
    tiny_student.source = "/models/x"
    assert model_source(tiny_student) == "/models/x"
    tiny_student.source = None
    tiny_student.model.config._name_or_path = ""
    with pytest.raises(ValueError, match="use --engine transformers"):
        model_source(tiny_student)
