"""The cost plan printed before long work: exact counts of what will be computed (samples, tokens,
attempts, what the cache already holds) and a measured, positive and finite time estimate."""

from __future__ import annotations

import math

import torch

from test_metrics_helpers import pool, sample

from dmc.data.schema import EvalItem
from dmc.scoring import ScoringSettings, compute_tables
from dmc.stats import AttemptSettings, StatsCache, TokenStatsSettings, compute_token_stats
from dmc.stats.cost import pilot_plan, plan_cost, truncated_counts
from dmc.validation.protocol import ValidateConfig, _pilot_plan

Q = "What is 2 + 3?"
SAMPLES = [sample("A", "a0", Q, "2 + 3 = 5. The answer is 5.", "5"),
           sample("A", "a1", "What is 4 + 4?", "4 + 4 = 8. The answer is 8.", "8"),
           sample("B", "b0", Q, "Adding 2 and 3 gives 5. The answer is 5.", "5"),
           sample("B", "b0-copy", Q, "2 + 3 = 5. The answer is 5.", "5")]  # the same content as a0
EVAL = [EvalItem("e0", ({"role": "user", "content": "What is 1 + 6?"},), "7")]
ATT = AttemptSettings(k=3, temperature=0.7, max_new_tokens=5, batch_size=4)


def _lengths(student, samples):
    encs = [student.encode(s.prompt, s.response, max_length=student.context_length) for s in samples]
    return sum(len(e.input_ids) for e in encs), sum(e.response_end - e.response_start for e in encs)


def test_plan_counts_are_exact(tiny_student):
    plan = plan_cost(tiny_student, SAMPLES, [*SAMPLES, *EVAL], TokenStatsSettings(), ATT, measure=False)
    distinct = SAMPLES[:3]  # b0-copy is a0's content: scored once
    tokens, response = _lengths(tiny_student, distinct)
    assert (plan.samples, plan.samples_cached, plan.tokens, plan.response_tokens) == (3, 0, tokens, response)
    assert plan.truncated == 0 and plan.max_length == tiny_student.context_length
    # three distinct questions: 2 + 3 (shared by A and B), 4 + 4, and the eval's 1 + 6
    assert (plan.questions, plan.questions_cached, plan.k, plan.max_new_tokens) == (3, 0, 3, 5)
    assert plan.attempt_tokens == 3 * 3 * 5
    assert plan.batches == 3  # 4 sequences per batch, k=3 sampled attempts each: one question per batch
    assert plan.throughput is None and all(math.isnan(v) for v in plan.seconds.values())
    ifd = plan_cost(tiny_student, SAMPLES, SAMPLES, TokenStatsSettings(with_ifd=True), None, measure=False)
    assert ifd.tokens == tokens + response and ifd.questions == 0 and ifd.batches == 0


def test_cached_work_is_not_counted_again(tiny_student, tmp_path):
    cache = StatsCache(tmp_path)
    compute_token_stats(tiny_student, SAMPLES[:1], TokenStatsSettings(), cache=cache, progress=False)
    plan = plan_cost(tiny_student, SAMPLES, SAMPLES, TokenStatsSettings(), ATT, cache=cache, measure=False)
    assert (plan.samples, plan.samples_cached) == (2, 1)
    assert plan.tokens == _lengths(tiny_student, SAMPLES[1:3])[0]


def test_truncation_counts_per_dataset(tiny_student):
    long = sample("B", "long", Q, " ".join(str(i) for i in range(200)) + " The answer is 5.", "5")
    cut = truncated_counts(tiny_student, pool(*SAMPLES, long), TokenStatsSettings(max_length=48))
    assert cut == {"A": 0, "B": 1}
    plan = plan_cost(tiny_student, [*SAMPLES, long], [], TokenStatsSettings(max_length=48), None, measure=False)
    assert plan.truncated == 1 and plan.max_length == 48
    assert any("1 cut at max_length 48" in line for line in plan.lines())


def test_the_estimate_is_measured_positive_and_finite(tiny_student):
    plan = plan_cost(tiny_student, SAMPLES, [*SAMPLES, *EVAL], TokenStatsSettings(), ATT)
    tp = plan.throughput
    assert tp is not None and tp.forward_tokens_per_s > 0 and tp.seconds_per_step > 0 and tp.seconds_prefill > 0
    sec = plan.seconds
    assert 0 < sec["tokens"] < math.inf and 0 < sec["attempts"] < math.inf and math.isnan(sec["pilots"])
    text = "\n".join(plan.lines())
    assert "3 samples to score (0 cached)" in text and "at most 45 generated tokens" in text and "estimate" in text
    before = {k: v.clone() for k, v in tiny_student.model.state_dict().items()}
    tiny_student.model.requires_grad_(False)
    pilots = pilot_plan(tiny_student, SAMPLES, n=2, steps=10, evals=2, batch_size=4, max_length=512,
                        eval_questions=1, eval_max_new_tokens=8, eval_batch_size=4, workers=2, threads=1)
    assert pilots.train_tokens == int(10 * 4 * sum(_lengths(tiny_student, [s])[0] for s in SAMPLES) / len(SAMPLES))
    assert pilots.seconds_per_train_token is not None and 0 < pilots.seconds_per_train_token < math.inf
    # the timed training step leaves the student as it was: weights, frozen flags, no gradients
    assert all(torch.equal(v, before[k]) for k, v in tiny_student.model.state_dict().items())
    assert all(not p.requires_grad and p.grad is None for p in tiny_student.model.parameters())
    with_pilots = type(plan)(**{**plan.__dict__, "pilots": pilots})
    assert 0 < with_pilots.seconds["pilots"] < math.inf and "pilots: 2" in "\n".join(with_pilots.lines())


def test_compute_tables_announces_the_plan_before_the_work(tiny_student, tmp_path):
    seen = []
    settings = ScoringSettings(metrics=("dmc",), attempts=AttemptSettings(max_new_tokens=4))
    compute_tables(tiny_student, SAMPLES[:2], settings, cache=StatsCache(tmp_path), on_plan=seen.append)
    assert len(seen) == 1 and seen[0].samples == 2 and seen[0].questions == 2
    compute_tables(tiny_student, SAMPLES[:2], settings, cache=StatsCache(tmp_path), on_plan=seen.append)
    assert (seen[1].samples, seen[1].samples_cached, seen[1].questions, seen[1].questions_cached) == (0, 2, 0, 2)


def test_validate_counts_its_pilots(tiny_student):
    cfg = ValidateConfig(experiments=("e1", "e3"), seeds=(0, 1), e3_steps=8, e3_eval_every=4)
    p = _pilot_plan(cfg, tiny_student, pool(*SAMPLES), 5, 2)
    steps = cfg.train.steps
    assert p.n == 2 * 2 + 2 * 3  # E1: 2 datasets x 2 seeds; E3: 3 strategies x 2 seeds
    assert p.steps == 4 * steps + 6 * 8 and p.evals == 4 + 6 * 3 + 1  # + the initial student's accuracy
    assert p.workers == 2 and p.eval_questions == 5
