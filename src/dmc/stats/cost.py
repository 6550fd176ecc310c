"""What a scoring run will compute, and an estimate of its wall time on this device, before it starts.

`plan_cost` counts the work exactly (samples and questions to compute versus already cached, the
forwarded and response tokens of the samples as the student encodes them, the attempts' generation
budget) and `calibrate` times the student on this device: one forward over a few hundred tokens of
the run's own data through the statistics engine, and a few generated tokens on one batch of its
questions. The time is an estimate: the forward's tokens/s times the tokens to forward, and one
generation step per attempt token of the budget (an attempt that stops at EOS costs less).
`pilot_cost` adds the pilots of `dmc validate` (training ≈ 3 forwards per token).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from dmc.data.schema import CandidateDataset, EvalItem, Sample
from dmc.stats.attempts import questions_per_batch
from dmc.stats.cache import StatsCache
from dmc.stats.core import Span, score_batch
from dmc.stats.settings import AttemptSettings, TokenStatsSettings
from dmc.stats.tokens import encode_sample, max_length_for
from dmc.students.generation import generate

CALIBRATION_TOKENS = 1024  # forward tokens timed, as one batch of the run's own sequences (fewer when batches are)
CALIBRATION_NEW_TOKENS = 8  # generation steps timed (beyond the first, which includes the prompts' forward)
TRAIN_FORWARDS = 3.0  # unmeasured: a training step costs about a forward and a backward (≈ 2 forwards) per token
TRAIN_CALIBRATION_ROWS = 4  # sequences of the timed training step


@dataclass(frozen=True)
class Throughput:
    """The student's speed on this device: forwarded tokens/s of the statistics engine and seconds
    per generation step of one attempt batch."""

    forward_tokens_per_s: float
    seconds_per_step: float
    seconds_prefill: float  # one batch's prompts, before its first new token


@dataclass(frozen=True)
class PilotPlan:
    """Pilots of `dmc validate`: how many, their training steps and tokens and their accuracy
    measurements, all pilots together."""

    n: int
    steps: int
    train_tokens: int  # steps x batch size x the samples' mean encoded length (capped at max_length)
    evals: int  # passes over the eval set
    eval_questions: int
    eval_max_new_tokens: int
    eval_batch_size: int
    seconds_per_train_token: float | None = None  # measured: a forward and backward pass (None: not measured)
    workers: int = 1  # pilots side by side


@dataclass(frozen=True)
class CostPlan:
    """The work of one scoring run (exact counts) and the measured throughput (None: not measured)."""

    samples: int  # distinct samples whose token statistics are computed now
    samples_cached: int
    tokens: int  # tokens forwarded for them (prompt + response as encoded, plus the IFD pass when asked)
    response_tokens: int  # their response tokens, as scored (after truncation)
    truncated: int  # of them, traces cut at the scoring max_length
    max_length: int
    questions: int  # distinct questions the student attempts now
    questions_cached: int
    k: int
    max_new_tokens: int
    batches: int  # generation batches for those questions
    throughput: Throughput | None = None
    pilots: PilotPlan | None = None

    @property
    def attempt_tokens(self) -> int:
        """The attempts' generation budget: questions x k x max_new_tokens."""
        return self.questions * self.k * self.max_new_tokens

    @property
    def seconds(self) -> dict[str, float]:
        """Estimated seconds of token statistics, attempts and pilots (NaN when not measured, and for
        pilots when there are none)."""
        tp = self.throughput
        if tp is None:
            return {"tokens": math.nan, "attempts": math.nan, "pilots": math.nan}
        out = {"tokens": self.tokens / tp.forward_tokens_per_s,
               "attempts": self.batches * (tp.seconds_prefill + self.max_new_tokens * tp.seconds_per_step),
               "pilots": math.nan}
        if self.pilots is not None:
            p = self.pilots
            eval_batches = math.ceil(p.eval_questions / p.eval_batch_size)
            per_token = p.seconds_per_train_token or TRAIN_FORWARDS / tp.forward_tokens_per_s
            out["pilots"] = (p.train_tokens * per_token + p.evals * eval_batches * (
                tp.seconds_prefill + p.eval_max_new_tokens * tp.seconds_per_step)) / p.workers
        return out

    def lines(self) -> list[str]:
        """The plan as a few short lines for people."""
        sec = self.seconds
        est = (lambda k: f", ≈ {_duration(sec[k])}") if self.throughput is not None else (lambda k: "")
        out = [f"token statistics: {self.samples} samples to score ({self.samples_cached} cached), "
               f"{self.response_tokens:,} response tokens, {self.tokens:,} tokens forwarded"
               + (f", {self.truncated} cut at max_length {self.max_length}" if self.truncated else "") + est("tokens")]
        if self.questions or self.questions_cached:
            out.append(f"student attempts: {self.questions} questions ({self.questions_cached} cached) x k={self.k} x "
                       f"{self.max_new_tokens} new tokens = at most {self.attempt_tokens:,} generated tokens"
                       + est("attempts"))
        if self.pilots is not None:
            p = self.pilots
            out.append(f"pilots: {p.n} (finished ones are skipped): {p.steps:,} training steps, ≈ {p.train_tokens:,} "
                       f"training tokens, {p.evals} evaluations of {p.eval_questions} questions x "
                       f"{p.eval_max_new_tokens} new tokens" + est("pilots"))
        if self.throughput is not None:
            tp = self.throughput
            total = sum(v for v in sec.values() if not math.isnan(v))
            out.append(f"estimate ≈ {_duration(total)} in all on this device (measured now: "
                       f"{tp.forward_tokens_per_s:,.0f} forwarded tokens/s, {tp.seconds_per_step:.3f} s per generation "
                       "step; attempts assume every attempt uses its whole budget)")
        return out


def _duration(s: float) -> str:
    if not math.isfinite(s):
        return "n/a"
    if s < 90:
        return f"{s:.0f}s"
    return f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"


def _pending(cache: StatsCache | None, table: str, student, settings_hash: str, column: str,
             items: dict[str, object]) -> tuple[list, int]:
    """(the items, by key, that ``cache`` does not hold yet, how many it holds)."""
    done = set(cache.load(table, student.fingerprint, settings_hash)[0][column].to_pylist()) if cache else set()
    todo = [x for key, x in items.items() if key not in done]
    return todo, len(items) - len(todo)


def encoded(student, samples: Sequence[Sample], settings: TokenStatsSettings) -> list:
    """Each sample as the statistics engine encodes it (input_ids, response span, truncated)."""
    return [encode_sample(student, s, settings) for s in samples]


def truncated_counts(student, datasets: Sequence[CandidateDataset], settings: TokenStatsSettings) -> dict[str, int]:
    """Per dataset, how many of its samples the scoring max_length would cut."""
    return {ds.name: sum(bool(e.truncated) for e in encoded(student, ds.samples, settings)) for ds in datasets}


def plan_cost(student, samples: Sequence[Sample], questions: Sequence[Sample | EvalItem],
              tokens: TokenStatsSettings | None, attempts: AttemptSettings | None, *,
              cache: StatsCache | None = None, measure: bool = True) -> CostPlan:
    """The exact work of token statistics of ``samples`` (None settings: not computed) and attempts at
    ``questions`` (None: none), minus what ``cache`` holds; with ``measure``, the student's
    throughput on its device (a few seconds)."""
    todo, n_cached = [], 0
    if tokens is not None:
        todo, n_cached = _pending(cache, "tokens", student, tokens.settings_hash, "sample_hash",
                                  {s.hash: s for s in samples})
    encs = encoded(student, todo, tokens) if tokens is not None else []
    resp = sum(e.response_end - e.response_start for e in encs)
    fwd = sum(len(e.input_ids) for e in encs) + (resp if tokens is not None and tokens.with_ifd else 0)
    q_todo, q_cached = [], 0
    if attempts is not None:
        q_todo, q_cached = _pending(cache, "attempts", student, attempts.settings_hash, "question_hash",
                                    {q.question_hash: q for q in questions})
    att = attempts or AttemptSettings()
    per_batch = questions_per_batch(att)
    plan = CostPlan(samples=len(todo), samples_cached=n_cached, tokens=fwd, response_tokens=resp,
                    truncated=sum(bool(e.truncated) for e in encs),
                    max_length=max_length_for(student, tokens or TokenStatsSettings()),
                    questions=len(q_todo), questions_cached=q_cached, k=att.k, max_new_tokens=att.max_new_tokens,
                    batches=math.ceil(len(q_todo) / per_batch))
    if not measure or not (todo or q_todo):
        return plan  # nothing to compute: nothing to time
    seqs = [e.input_ids for e in encs] or [student.encode_prompt(_first_prompt(samples, questions))]
    prompts = [q.prompt for q in q_todo[:per_batch]] or [_first_prompt(samples, questions)]
    batch = min(CALIBRATION_TOKENS, (tokens or TokenStatsSettings()).batch_tokens)
    return replace(plan, throughput=calibrate(student, seqs, prompts, att, batch_tokens=batch))


def _first_prompt(samples: Sequence[Sample], questions: Sequence[Sample | EvalItem]):
    first = next(iter([*samples, *questions]), None)
    return first.prompt if first is not None else ({"role": "user", "content": "1 + 1 ="},)


def calibrate(student, sequences: Sequence[Sequence[int]], prompts: Sequence, attempts: AttemptSettings, *,
              batch_tokens: int = CALIBRATION_TOKENS) -> Throughput:
    """Time the student here, after a warm-up of each (first calls pay one-off costs): the
    statistics engine's forward of one batch of ``sequences`` (up to ``batch_tokens`` tokens), and generation for ``prompts`` (one attempt batch, under ``attempts``'
    sampling) of 1 token (the prompts' forward) and of 1 + CALIBRATION_NEW_TOKENS tokens (the
    difference: the per-step cost)."""
    spans, n = [], 0
    for seq in sequences:
        ids = [int(t) for t in seq[:max(2, batch_tokens - n)]]
        if len(ids) < 2:
            continue
        spans.append(Span(ids, 1, len(ids)))
        n += len(ids)
        if n >= batch_tokens:
            break
    spans = spans or [Span([0, 0], 1, 2)]
    score_batch(student.model, spans[:1])
    fwd = n / _timed(lambda: score_batch(student.model, spans))
    _timed_generate(student, prompts[:1], attempts, 1)
    t_first, _ = _timed_generate(student, prompts, attempts, 1)
    t_more, steps = _timed_generate(student, prompts, attempts, 1 + CALIBRATION_NEW_TOKENS)
    per_step = max(t_more - t_first, 0.0) / (steps - 1) if steps > 1 else t_first
    return Throughput(fwd, per_step, t_first)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return max(time.perf_counter() - t0, 1e-9)


def _timed_generate(student, prompts: Sequence, attempts: AttemptSettings, new_tokens: int) -> tuple[float, int]:
    """Seconds to generate up to ``new_tokens`` for ``prompts``, and the longest attempt's length."""
    gens: list = []
    seconds = _timed(lambda: gens.extend(generate(
        student, list(prompts), k=attempts.k, temperature=attempts.temperature, top_p=attempts.top_p,
        max_new_tokens=new_tokens, seed=attempts.seed, batch_size=attempts.batch_size)))
    return seconds, max([len(g.token_ids) for gs in gens for g in gs] + [1])


def pilot_plan(student, samples: Sequence[Sample], *, n: int, steps: int, evals: int, batch_size: int,
               max_length: int, eval_questions: int, eval_max_new_tokens: int, eval_batch_size: int,
               workers: int = 1, threads: int | None = None, measure: bool = True) -> PilotPlan:
    """The pilots' work, all ``n`` together: ``steps`` training steps of ``batch_size`` sequences of the
    samples' mean encoded length (capped at the pilots' ``max_length``), and ``evals`` passes over
    the eval set, ``workers`` pilots at a time; with ``measure``, the seconds per training token of
    one forward and backward pass of the student over a few of those sequences, with the pilots'
    ``threads`` torch threads (its weights are left as they were)."""
    encs = encoded(student, samples, TokenStatsSettings())
    lengths = [min(len(e.input_ids), max_length) for e in encs]
    mean = sum(lengths) / len(lengths) if lengths else 0.0
    per_token = None
    if measure and lengths:
        rows = [[int(t) for t in e.input_ids[:max(2, int(mean))]] for e in encs[:TRAIN_CALIBRATION_ROWS]]
        prev = torch.get_num_threads()
        torch.set_num_threads(threads or prev)
        try:
            per_token = _train_step_seconds(student.model, rows) / sum(len(r) for r in rows)
        finally:
            torch.set_num_threads(prev)
    return PilotPlan(n=n, steps=steps, train_tokens=int(steps * batch_size * mean), evals=evals,
                     eval_questions=eval_questions, eval_max_new_tokens=eval_max_new_tokens,
                     eval_batch_size=eval_batch_size, seconds_per_train_token=per_token, workers=workers)


def _train_step_seconds(model, rows: list[list[int]]) -> float:
    """Seconds of one forward and backward pass over ``rows`` (right-padded), after a warm-up; the
    gradients are dropped and the weights are not touched (nor their requires_grad flags)."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows], device=next(model.parameters()).device)
    mask = (torch.arange(width, device=ids.device)[None, :] < torch.tensor([len(r) for r in rows], device=ids.device)[:, None])

    def step() -> None:
        with torch.enable_grad():
            model(input_ids=ids, attention_mask=mask.long(), labels=ids.masked_fill(~mask, -100)).loss.backward()
        model.zero_grad(set_to_none=True)

    try:
        for p in params:  # a student loaded for inference may have its weights frozen
            p.requires_grad_(True)
        step()
        return _timed(step)
    finally:
        model.zero_grad(set_to_none=True)
        for p, f in zip(params, flags):
            p.requires_grad_(f)
