"""vLLM as the engine of generation (attempts, eval answers) and token statistics (GPU only).

`--engine vllm` (the `vllm` extra, on a CUDA machine) replaces transformers' `generate` and the
teacher-forced scoring pass:

- generation: `SamplingParams` with the same k, temperature, top_p (no top-k cut),
  max_new_tokens, stop tokens and a seed per prompt; each generated token's log-probability comes
  from vLLM's `logprobs=0` (the raw model distribution, as `mean_surprisal` asks);
- token statistics: one prefill per sequence with `prompt_logprobs=0`, which gives every prompt
  token its log-probability and its rank (1 = argmax). vLLM does not return the full
  distribution, so the entropy is NaN for every token (metrics that need it say so).

vLLM and transformers disagree slightly on log-probabilities (different kernels), so the engine
is a result setting: it enters the statistics' cache keys. The engine loads the weights from the
student's source (a Hugging Face directory or hub name): a model changed in memory (training)
is scored with transformers. `vllm` is imported inside the functions that use it.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from dmc.data.schema import Message
from dmc.settings import Spec
from dmc.students.generation import Generation, _batch_seed, _one
from dmc.students.student import Student

ENGINES = ("transformers", "vllm")
ENGINE = Spec("Engine of generation and token statistics: transformers, or vllm (CUDA GPU and the vllm extra; "
              "its log-probabilities differ slightly, so its tables are cached apart; no entropy).",
              default="transformers", flag="--engine", choices=ENGINES, keyed_if_set=True)
ENTROPY_REASON = "entropy unavailable: the vllm engine returns log-probabilities and ranks, not the distribution"

_LLMS: dict[str, Any] = {}  # one vLLM engine per model source in a process (loading one takes a while)


def check_engine(engine: str) -> None:
    """Raise a one-line ValueError when `engine` cannot run here (vllm missing, or no CUDA GPU)."""
    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "vllm":
        return
    if importlib.util.find_spec("vllm") is None:
        raise ValueError("--engine vllm: vllm is not installed (pip install 'dmc[vllm]' on a CUDA machine)")
    if not torch.cuda.is_available():
        raise ValueError("--engine vllm needs a CUDA GPU and none is visible (use --engine transformers)")


def model_source(model: Any) -> str:
    """Where vLLM loads `model` (a Student or a transformers model) from: its HF directory or hub name."""
    src = getattr(model, "source", None)
    if isinstance(model, Student):
        model = model.model
    src = src or getattr(getattr(model, "config", None), "_name_or_path", None) or getattr(model, "name_or_path", None)
    if not src:
        raise ValueError("--engine vllm loads the student from its Hugging Face directory or hub name; this "
                         "student has none (built in memory): use --engine transformers")
    return str(src)


def llm_for(model: Any):
    """The process's vLLM engine for `model`'s source (created on first use)."""
    check_engine("vllm")
    src = model_source(model)
    if src not in _LLMS:
        from vllm import LLM

        # Prefix caching would skip the prompt log-probabilities of cached prefixes.
        _LLMS[src] = LLM(model=src, tokenizer=src, seed=0, enable_prefix_caching=False)
    return _LLMS[src]


# -- pure conversions of vLLM's output objects (unit-tested with stand-ins) -------------------------------


def _logprob_of(entry: Mapping[int, Any] | None, token: int) -> tuple[float, int]:
    """(log-probability, rank) of `token` in one position's {token_id: Logprob} (NaN, 0 when absent)."""
    lp = None if entry is None else entry.get(int(token))
    if lp is None:
        return math.nan, 0
    rank = getattr(lp, "rank", None)
    return float(lp.logprob), int(rank) if rank is not None else 0


def span_stats_from_prompt_logprobs(input_ids: Sequence[int], start: int, end: int,
                                    prompt_logprobs: Sequence[Mapping[int, Any] | None]) -> dict[str, np.ndarray]:
    """The statistics of tokens input_ids[start:end] from a RequestOutput's `prompt_logprobs` (one
    {token_id: Logprob(logprob, rank, decoded_token)} per prompt position, None at position 0):
    token_ids, logprob (natural log), rank (1 = argmax, 0 where vLLM gave none) and entropy (NaN)."""
    if not 1 <= start <= end <= len(input_ids):
        raise ValueError(f"span needs 1 <= start <= end <= len(input_ids); got {start}, {end}, {len(input_ids)}")
    if len(prompt_logprobs) != len(input_ids):
        raise ValueError(f"vLLM returned {len(prompt_logprobs)} prompt log-probabilities for {len(input_ids)} tokens")
    ids = np.asarray(input_ids[start:end], dtype=np.int32)
    pairs = [_logprob_of(prompt_logprobs[t], input_ids[t]) for t in range(start, end)]
    return {"token_ids": ids,
            "logprob": np.asarray([p[0] for p in pairs], dtype=np.float32),
            "rank": np.asarray([p[1] for p in pairs], dtype=np.int32),
            "entropy": np.full(len(ids), np.nan, dtype=np.float32)}


def generation_from_completion(student: Student, completion: Any, stops: set[int]) -> Generation:
    """A `Generation` from one vLLM CompletionOutput (token_ids, and logprobs: one {token_id: Logprob}
    per generated token), cut and decoded as transformers' generations are."""
    tokens = [int(t) for t in completion.token_ids]
    entries = completion.logprobs or [None] * len(tokens)
    logp = torch.tensor([_logprob_of(e, t)[0] for e, t in zip(entries, tokens)], dtype=torch.float64)
    return _one(student, tokens, logp, stops)


# -- the engine ----------------------------------------------------------------------------------------


def _run(llm, prompts: list[list[int]], params: list[Any]) -> list[Any]:
    return llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)


def generate_vllm(student: Student, prompts: Sequence[Sequence[Message]], *, k: int = 1, temperature: float = 0.0,
                  top_p: float = 1.0, max_new_tokens: int = 256, seed: int = 0, **_: Any) -> list[list[Generation]]:
    """`dmc.students.generation.generate` on vLLM: k generations per prompt, in prompt order; prompt
    i is seeded from (seed, i). Greedy (temperature 0) computes one and repeats it k times."""
    from vllm import SamplingParams

    if not prompts:
        return []
    sample = temperature > 0
    n = k if sample else 1
    encoded = [student.encode_prompt(tuple(p)) for p in prompts]
    stops = set(student.stop_token_ids)
    params = [SamplingParams(n=n, temperature=temperature if sample else 0.0, top_p=top_p if sample else 1.0,
                             max_tokens=max_new_tokens, seed=_batch_seed(seed, i), logprobs=0,
                             stop_token_ids=sorted(stops), skip_special_tokens=True)
              for i in range(len(encoded))]
    outs = _run(llm_for(student), encoded, params)
    result = []
    for out in outs:
        gens = [generation_from_completion(student, c, stops) for c in sorted(out.outputs, key=lambda c: c.index)]
        result.append(gens if sample else gens * k)
    return result


def span_stats_vllm(model: Any, spans: Sequence[tuple[Sequence[int], int, int]]) -> list[dict[str, np.ndarray]]:
    """Token statistics of (input_ids, start, end) spans from one vLLM prefill each (prompt_logprobs)."""
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
    outs = _run(llm_for(model), [list(map(int, ids)) for ids, _, _ in spans], [params] * len(spans))
    return [span_stats_from_prompt_logprobs(list(ids), s, e, out.prompt_logprobs)
            for (ids, s, e), out in zip(spans, outs)]
