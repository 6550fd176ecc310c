"""Batched generation with the KV cache (transformers' `generate`), reproducible for a seed.

Prompts are templated with the student's chat template (generation prompt included), left-padded
with an attention mask, and generated in batches in the order given. Each batch is seeded from
(seed, batch index), so a batch's samples do not depend on what ran before it; they do depend on
the batch's composition, so the same (prompts, k, seed, batch_size) give the same samples.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from dmc.data.schema import Message
from dmc.students.student import Student


@dataclass(frozen=True)
class Generation:
    """One generated answer.

    text: the decoded answer, without the end-of-turn token and special tokens. With the plain
        (no chat template) format the generation prompt is "Answer:", so the model starts with a
        space; that one leading space is removed from `text` (not from `token_ids`).
    token_ids: every generated token, including the end-of-turn token when one was produced.
    truncated: True when no end-of-turn token came within max_new_tokens.
    mean_surprisal: mean of -log p(token) over `token_ids` under the model's own distribution at
        temperature 1 (whatever the sampling temperature), in nats, in [0, inf); lower = the model
        is surer of its own text. None when nothing was generated.
    """

    text: str
    token_ids: list[int]
    truncated: bool
    mean_surprisal: float | None


class _SurprisalRecorder(LogitsProcessor):
    """Records log p(chosen token) at each step from the raw logits.

    Custom processors run before the sampling warpers (temperature, top-p), so the scores seen here
    are the model's own distribution. The token chosen at step t is only known at step t+1 (as the
    last input id), so one step of log-probabilities is kept: memory is O(batch x vocab), not
    O(steps x batch x vocab) as with output_logits.
    """

    def __init__(self) -> None:
        self._prev: torch.Tensor | None = None
        self.picked: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._prev is not None:
            self._take(input_ids[:, -1])
        self._prev = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def _take(self, tokens: torch.Tensor) -> None:
        assert self._prev is not None
        self.picked.append(self._prev.gather(1, tokens[:, None].to(self._prev.device)).squeeze(1).cpu())

    def finish(self, last_tokens: torch.Tensor | None) -> torch.Tensor:
        """[batch, steps] log-probs; `last_tokens` are the tokens chosen at the final step."""
        if self._prev is not None and last_tokens is not None:
            self._take(last_tokens)
        self._prev = None
        if not self.picked:
            return torch.zeros(0, 0)
        return torch.stack(self.picked, dim=1)


def _batch_seed(seed: int, batch_index: int) -> int:
    digest = hashlib.sha256(f"dmc-generate|{seed}|{batch_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _generation_config(
    student: Student, *, sample: bool, temperature: float, top_p: float, max_new_tokens: int, n: int, pad_id: int
) -> GenerationConfig:
    # Every knob that shapes the distribution is set explicitly, so nothing is inherited from the
    # model's own generation_config (a repetition penalty, top_k=50 ...).
    cfg = dict(
        max_new_tokens=max_new_tokens,
        min_new_tokens=0,
        do_sample=sample,
        num_beams=1,
        num_return_sequences=n,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        eos_token_id=student.stop_token_ids,
        pad_token_id=pad_id,
        use_cache=True,
        return_dict_in_generate=True,
    )
    if sample:  # sampling warpers: only the temperature and nucleus asked for
        cfg.update(temperature=temperature, top_p=top_p, top_k=0, min_p=0.0, typical_p=1.0)
    return GenerationConfig(**cfg)


def _pad_id(student: Student) -> int:
    tok = student.tokenizer
    if tok.pad_token_id is not None:
        return int(tok.pad_token_id)
    stops = student.stop_token_ids
    if not stops:
        raise ValueError(f"student {student.name!r}: the tokenizer has neither a pad token nor an EOS token")
    return stops[0]


def generate(
    student: Student,
    prompts: Sequence[Sequence[Message]],
    *,
    k: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 256,
    seed: int = 0,
    batch_size: int = 16,
) -> list[list[Generation]]:
    """k generations per prompt, in prompt order: result[i][j] is attempt j at prompts[i].

    temperature == 0 is greedy decoding (the k attempts are then identical: one is computed and
    repeated); temperature > 0 samples with nucleus `top_p` and no top-k cut. Generation stops at
    any of `student.stop_token_ids` (EOS and the template's end-of-turn tokens). `batch_size`
    bounds the sequences per `generate` call (prompts per call = batch_size // k, at least 1).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if temperature < 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not prompts:
        return []
    sample = temperature > 0
    n = k if sample else 1
    per_call = max(1, batch_size // n)
    pad_id = _pad_id(student)
    stops = set(student.stop_token_ids)
    config = _generation_config(
        student, sample=sample, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, n=n, pad_id=pad_id
    )
    encoded = []
    for i, p in enumerate(prompts):
        try:
            encoded.append(student.encode_prompt(tuple(p)))
        except Exception as e:
            raise ValueError(f"prompt {i}: cannot template it for student {student.name!r}: {e}") from e

    model = student.model
    device = student.device
    was_training = model.training
    model.eval()
    out: list[list[Generation]] = []
    try:
        for b, start in enumerate(range(0, len(encoded), per_call)):
            batch = encoded[start : start + per_call]
            width = max(len(x) for x in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, x in enumerate(batch):
                ids[r, width - len(x) :] = torch.tensor(x, dtype=torch.long)
                mask[r, width - len(x) :] = 1
            recorder = _SurprisalRecorder()
            devices = [device.index or 0] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices), torch.inference_mode():
                torch.manual_seed(_batch_seed(seed, b))
                res = model.generate(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device),
                    generation_config=config,
                    logits_processor=LogitsProcessorList([recorder]),
                )
            new = res.sequences[:, width:].cpu()
            logp = recorder.finish(new[:, -1] if new.shape[1] else None)
            for r in range(len(batch)):
                gens = [_one(student, new[r * n + j].tolist(), logp[r * n + j], stops) for j in range(n)]
                out.append(gens if sample else gens * k)
    finally:
        model.train(was_training)
    return out


def _one(student: Student, tokens: list[int], logp: torch.Tensor, stops: set[int]) -> Generation:
    end = next((i + 1 for i, t in enumerate(tokens) if t in stops), None)
    truncated = end is None
    kept = tokens if end is None else tokens[:end]
    body = kept if truncated else kept[:-1]
    text = student.tokenizer.decode(body, skip_special_tokens=True)
    if not student.has_chat_template and text.startswith(" "):
        text = text[1:]
    lp = logp[: len(kept)]
    ms = float(-lp.double().mean()) if len(kept) else None
    return Generation(text=text, token_ids=kept, truncated=truncated, mean_surprisal=ms)
