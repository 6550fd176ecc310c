"""The DMC curriculum: mixture policies, the mixture sampler, the callback, exact resume, TRL API."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler

from conftest import addition_dataset as _dataset
from dmc.data.schema import CandidateDataset, EvalItem
from dmc.curriculum import (
    ArgmaxPolicy,
    DMCCurriculumCallback,
    MixtureCurriculum,
    MixtureSampler,
    MixtureSchedule,
    PoolDataset,
    ProportionalPolicy,
    SoftmaxPolicy,
    make_policy,
)
from dmc.training import StopAtStep, TrainConfig, train
from dmc.curriculum.callback import STATE_FILE


@pytest.fixture
def pool():
    return [_dataset("step", 12, "step"), _dataset("terse", 10, "terse"), _dataset("mixed", 6, "step", offset=40)]


# -- policies --------------------------------------------------------------------------------------

def test_argmax_keeps_a_dataset_for_min_dwell_rescores():
    names = ["a", "b"]
    pol = ArgmaxPolicy(min_dwell=2)
    w = None
    chosen = []
    for scores in [{"a": 0.5, "b": 0.1}, {"a": 0.1, "b": 0.9}, {"a": 0.1, "b": 0.9}, {"a": 0.9, "b": 0.1}, {"a": 0.9, "b": 0.1}]:
        d = pol.decide(names, scores, w)
        w = np.asarray(d.weights)
        chosen.append(names[int(np.argmax(w))])
        assert sorted(d.weights) == [0.0, 1.0]
    # b wins at the 2nd re-score but a must dwell 2 re-scores; then b must dwell 2 before a returns
    assert chosen == ["a", "a", "b", "b", "a"]


def test_argmax_ignores_nan_and_keeps_mixture_when_all_nan():
    pol = ArgmaxPolicy(min_dwell=1)
    d = pol.decide(["a", "b"], {"a": math.nan, "b": 0.2}, None)
    assert d.weights == [0.0, 1.0] and "unscored" in d.reason
    d2 = pol.decide(["a", "b"], {"a": math.nan, "b": math.nan}, np.asarray(d.weights))
    assert d2.weights == [0.0, 1.0] and "unchanged" in d2.reason
    with pytest.raises(ValueError, match="all NaN"):
        ArgmaxPolicy().decide(["a", "b"], {"a": math.nan, "b": math.nan}, None)
    with pytest.raises(KeyError, match="no score for datasets"):
        ArgmaxPolicy().decide(["a", "b"], {"a": 0.3}, None)


def test_softmax_and_proportional_weights():
    names = ["a", "b", "c"]
    scores = {"a": 0.2, "b": 0.4, "c": math.nan}
    w = SoftmaxPolicy(tau=0.1).decide(names, scores, None).weights
    e = np.exp(np.array([0.2, 0.4]) / 0.1)
    assert w[:2] == pytest.approx((e / e.sum()).tolist()) and w[2] == 0.0
    p = ProportionalPolicy().decide(names, {"a": 0.1, "b": 0.3, "c": -0.2}, None).weights
    assert p == pytest.approx([0.25, 0.75, 0.0])
    assert isinstance(make_policy("softmax:0.5"), SoftmaxPolicy) and make_policy("softmax:0.5").tau == 0.5
    assert make_policy("argmax:3").min_dwell == 3
    with pytest.raises(ValueError, match="unknown mixture policy"):
        make_policy("greedy")


# -- schedule and sampler ---------------------------------------------------------------------------

def _sampler(pool, schedule, batch_size=4, num_batches=12, seed=0):
    return MixtureSampler(PoolDataset(pool).labels, schedule, batch_size=batch_size, num_batches=num_batches, seed=seed)


def test_sampler_follows_schedule_and_draws_are_pure(pool):
    ds = PoolDataset(pool)
    sched = MixtureSchedule(ds.names)
    sched.set([1, 0, 0], step=0)
    sampler = _sampler(pool, sched)
    it = iter(BatchSampler(sampler, 4, drop_last=False))
    first = [next(it) for _ in range(3)]
    entry = sched.set([0, 0.5, 0.5], step=1)
    assert entry.from_batch == 3  # the next batch the sampler has not drawn yet
    rest = list(it)
    batches = first + rest
    assert len(batches) == 12
    labels = np.asarray(ds.labels)
    assert all(set(labels[b]) == {0} for b in batches[:3])
    assert all(0 not in set(labels[b]) for b in batches[3:])
    assert {1, 2} <= set(labels[np.concatenate(batches[3:])])
    # each batch is a pure function of (seed, batch, mixture): recomputed from nothing, it matches
    fresh = _sampler(pool, MixtureSchedule(ds.names))
    for b, idx in enumerate(batches):
        assert fresh.draw(b, sched.weights_at(b)) == idx
    assert sched.selections[0] == [4, 0, 0] and len(sched.selections) == 12
    # a second pass replays the same batches (what Trainer's batch skipping on resume relies on)
    assert list(BatchSampler(sampler, 4, drop_last=False)) == batches
    # another seed draws differently
    other = _sampler(pool, sched, seed=1)
    assert [other.draw(b, sched.weights_at(b)) for b in range(12)] != batches


def test_single_dataset_is_walked_without_repeats(pool):
    ds = PoolDataset(pool)
    sched = MixtureSchedule(ds.names)
    sched.set([0, 1, 0], step=0)
    sampler = _sampler(pool, sched, batch_size=5, num_batches=4)
    rows = list(sampler)
    terse = ds.rows_of("terse")
    assert sorted(rows[:10]) == terse and sorted(rows[10:20]) == terse  # two epochs of the 10 rows


def test_replayed_batches_must_match_recorded_ones(pool):
    ds = PoolDataset(pool)
    sched = MixtureSchedule(ds.names)
    sched.set([1, 1, 1], step=0)
    list(_sampler(pool, sched, seed=0))
    state = json.loads(json.dumps(sched.state_dict()))
    restored = MixtureSchedule(ds.names)
    restored.load_state_dict(state)
    assert list(_sampler(pool, restored, seed=0)) == list(_sampler(pool, sched, seed=0))
    with pytest.raises(RuntimeError, match="seed changed"):
        list(_sampler(pool, restored, seed=5))


def test_mixture_validation(pool):
    with pytest.raises(ValueError, match="finite and >= 0"):
        MixtureCurriculum(pool, [1.0, -1.0, 0.0])
    with pytest.raises(KeyError, match="not candidate datasets"):
        MixtureCurriculum(pool, {"nope": 1.0})
    with pytest.raises(ValueError, match="unique"):
        PoolDataset([pool[0], pool[0]])
    uniform = MixtureCurriculum(pool, None)
    assert uniform._initial.tolist() == pytest.approx([12 / 28, 10 / 28, 6 / 28])


# -- the callback in training: exact resume ---------------------------------------------------------

def _weight_hash_rescore(student, probes):
    # Deterministic in the weights: any drift between runs changes the scores and the mixture.
    w = sum(p.detach().double().abs().sum().item() for p in student.model.parameters())
    return {"step": (w * 1e3) % 1.0, "terse": (w * 1e4) % 1.0, "mixed": 0.3}


def _run(tmp_path, name, tiny_student_factory, pool, *, stop=None, resume=False, rescore_fn=_weight_hash_rescore):
    st = tiny_student_factory("chatml")
    cur = DMCCurriculumCallback(pool, rescore_every=2, probe_size=4, policy="softmax:0.2", rescore_fn=rescore_fn,
                                seed=1, student=st)
    cfg = TrainConfig(output_dir=str(tmp_path / name), steps=8, batch_size=3, grad_accum=2, save_every=4, bf16=False,
                      learning_rate=1e-2)
    res = train(st, None, cfg, callbacks=[cur] + ([StopAtStep(stop)] if stop else []), resume_from_checkpoint=resume or None)
    return cur, res, st


def _losses(run_dir):
    events = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [e["loss"] for e in events if e["event"] == "train" and "loss" in e], events


def test_resumed_run_makes_the_same_selections_as_uninterrupted(tmp_path, tiny_student_factory, pool):
    full, _, st_full = _run(tmp_path, "full", tiny_student_factory, pool)
    _, res_part, _ = _run(tmp_path, "split", tiny_student_factory, pool, stop=4)
    assert res_part.global_step == 4
    ckpt = tmp_path / "split" / "checkpoints" / "checkpoint-4"
    saved = json.loads((ckpt / STATE_FILE).read_text())
    assert [e["step"] for e in saved["history"]] == [0, 2, 4]
    resumed, res_res, st_res = _run(tmp_path, "split", tiny_student_factory, pool, resume=True)
    assert res_res.global_step == 8

    # the mixture changed during the run, so the comparison below is not vacuous
    mixes = [tuple(round(x, 6) for x in e["mixture"].values()) for e in full.history]
    assert len(full.history) == 4 and len(set(mixes)) > 1
    assert resumed.schedule.selections == full.schedule.selections
    assert [(e["step"], e["mixture"], e["from_batch"], e["scores"]) for e in resumed.history] == \
        [(e["step"], e["mixture"], e["from_batch"], e["scores"]) for e in full.history]
    loss_full, _ = _losses(tmp_path / "full")
    loss_res, events = _losses(tmp_path / "split")
    assert loss_res == loss_full and len(loss_full) == 8  # log.jsonl holds each step once
    assert [e["step"] for e in events if e["event"] == "rescore"] == [0, 2, 4, 6]
    for a, b in zip(st_full.model.state_dict().values(), st_res.model.state_dict().values()):
        assert torch.equal(a, b)
    # batches follow the mixture in effect when they were drawn: zero-weight datasets never appear
    for b, counts in enumerate(full.schedule.selections):
        w = full.schedule.weights_at(b)
        assert all(c == 0 for c, x in zip(counts, w) if x == 0)
    assert sum(map(sum, full.schedule.selections)) >= 8 * 2 * 3


def test_resume_without_curriculum_state_fails_clearly(tmp_path, tiny_student_factory, pool):
    _run(tmp_path, "r", tiny_student_factory, pool, stop=4)
    (tmp_path / "r" / "checkpoints" / "checkpoint-4" / STATE_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="curriculum state"):
        _run(tmp_path, "r", tiny_student_factory, pool, resume=True)


def test_rescoring_leaves_rng_states_and_train_mode_alone(tiny_student_factory, pool):
    def noisy(student, probes):
        assert not student.model.training  # scored in eval mode
        torch.rand(1000)
        np.random.rand(10)
        return {"step": 1.0, "terse": 0.0, "mixed": float("nan")}

    st = tiny_student_factory("chatml")
    cur = DMCCurriculumCallback(pool, rescore_fn=noisy, student=st)
    st.model.train()
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    scores = cur.rescore()
    assert torch.equal(torch_state, torch.get_rng_state())
    assert np.array_equal(np_state[1], np.random.get_state()[1])
    assert st.model.training
    assert scores["step"] == 1.0 and math.isnan(scores["mixed"])
    assert cur.n_rescores == 1 and cur.rescore_seconds > 0


def test_rescores_keep_one_student_wrapper_with_a_fresh_fingerprint(tiny_student_factory, pool):
    seen = []

    def record(student, probes):
        seen.append((student, student.fingerprint, student.encode(probes["step"][0].prompt, probes["step"][0].response)))
        return {n: 0.5 for n in probes}

    st = tiny_student_factory("chatml")
    cur = DMCCurriculumCallback(pool, rescore_fn=record)
    cur.rescore(st.model, st.tokenizer)
    with torch.no_grad():
        next(st.model.parameters()).add_(0.01)  # a training step
    cur.rescore(st.model, st.tokenizer)
    (a, fp_a, enc_a), (b, fp_b, enc_b) = seen
    assert a is b  # the probes' encodings are kept between re-scores ...
    assert enc_b is enc_a
    assert fp_a != fp_b  # ... and the weights' fingerprint is not
    other = tiny_student_factory("chatml")
    cur.rescore(other.model, other.tokenizer)
    assert seen[-1][0] is not a and seen[-1][0].model is other.model


# -- the Python API on TRL's SFTTrainer ---------------------------------------------------------------

def test_sfttrainer_example_runs_the_curriculum(tmp_path, tiny_student_factory, pool):
    from dmc.training.example_sfttrainer import run

    st = tiny_student_factory("chatml")
    seen = []

    def alternate(student, probes):
        seen.append({k: len(v) for k, v in probes.items()})
        first = len(seen) % 2 == 1
        return {"step": 0.9 if first else 0.1, "terse": 0.5, "mixed": 0.2}

    cur = run(pool, st.model, st.tokenizer, str(tmp_path / "sft"), steps=6, batch_size=4, rescore_every=2,
              probe_size=4, policy="argmax:1", rescore_fn=alternate)
    assert seen == [{"step": 4, "terse": 4, "mixed": 4}] * 3  # steps 0, 2, 4 (not at the last step)
    assert [e["reason"].split(" ")[0] for e in cur.history] == ["start", "switch", "switch"]
    assert [max(e["mixture"], key=e["mixture"].get) for e in cur.history] == ["step", "terse", "step"]
    # every drawn batch is one-hot on the dataset chosen for it
    names = cur.names
    for b, counts in enumerate(cur.schedule.selections):
        w = cur.schedule.weights_at(b)
        assert counts[int(np.argmax(w))] == 4
    assert cur.rows_drawn()["terse"] > 0 and cur.rows_drawn()["step"] > 0
    assert names == ["step", "terse", "mixed"]


# -- the default re-scorer: DMC through dmc.scoring --------------------------------------------------

def test_dynamic_curriculum_with_real_dmc_rescoring(tmp_path, tiny_student_factory, pool):
    from dmc.metrics import MetricSettings
    from dmc.scoring import ScoringSettings, score
    from dmc.stats import AttemptSettings
    from dmc.curriculum.rescore import DMCRescorer

    st = tiny_student_factory("chatml")
    # a short warm-up so the student aligns with some traces (a random student scores all zeros)
    train(st, pool[0].samples + pool[1].samples, TrainConfig(output_dir=str(tmp_path / "warm"), steps=60, batch_size=4,
                                           learning_rate=1e-2, bf16=False, lr_scheduler="constant", save_model=False))
    target = [EvalItem(id=f"e{i}", prompt=({"role": "user", "content": f"What is {i} + {2 * i + 3}?"},), gold=str(3 * i + 3))
              for i in range(6)]
    attempts = AttemptSettings(max_new_tokens=24)
    # every question attempted, a fixed budget: then the re-scorer must agree with dmc.scoring.score
    rescorer = DMCRescorer(target, capability_size=None, target_size=None, attempt_budget=24)
    cur = DMCCurriculumCallback(pool, rescore_every=2, probe_size=None, policy="softmax:0.05", seed=3,
                                rescore_fn=rescorer, student=st)
    probes = [CandidateDataset(n, list(s)) for n, s in cur.probes.items()]
    expected = score(probes, st, eval_set=target, use_cache=False,
                     settings=ScoringSettings(metrics=("dmc",), attempts=attempts, metric=MetricSettings(n_boot=0)))
    exp = dict(zip(expected.datasets["dataset"], expected.datasets["dmc"]))
    res = train(st, None, TrainConfig(output_dir=str(tmp_path / "dyn"), steps=4, batch_size=4, bf16=False,
                                      learning_rate=1e-3), callbacks=[cur])
    first = cur.history[0]
    assert first["scores"] == pytest.approx(exp)  # step 0 = DMC of the untouched student
    assert max(exp.values()) > 0
    for e in cur.history:
        assert e["event"] == "rescore"
        assert all(0.0 <= v <= 1.0 for v in e["scores"].values() if v is not None)
        assert set(e["details"]["step"]) >= {"A", "Q", "C_D", "C_T", "R", "dmc_se"}
        # the re-score's bootstrap standard errors reach the log as its noise
        assert e["noise"] == {n: d.get("dmc_se") for n, d in e["details"].items()}
        assert all(v is not None and v >= 0 for n, v in e["noise"].items() if e["scores"][n] is not None)
        assert e["timing"]["n_traces"] == 28 and e["timing"]["attempt_budget"] == 24
        assert sum(e["mixture"].values()) == pytest.approx(1.0)
    assert [e["step"] for e in cur.history] == [0, 2]
    logged = [json.loads(x) for x in (tmp_path / "dyn" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in logged if e["event"] == "rescore"] == [0, 2]
    assert res.metrics["curriculum"]["n_rescores"] == 2


def test_rescoring_with_dmc_v2_and_likelihood_generates_nothing(tmp_path, tiny_student_factory, pool):
    """CurriculumSettings.metric = dmc_v2 with capability=likelihood: every re-score reads the gold
    answers' likelihoods (no attempt is generated) and agrees with dmc.scoring.score."""
    from dmc.curriculum.rescore import DMCRescorer
    from dmc.metrics import MetricSettings
    from dmc.scoring import ScoringSettings, score

    st = tiny_student_factory("chatml")
    train(st, pool[0].samples, TrainConfig(output_dir=str(tmp_path / "warm"), steps=40, batch_size=4,
                                           learning_rate=1e-2, bf16=False, lr_scheduler="constant", save_model=False))
    target = [EvalItem(id=f"e{i}", prompt=({"role": "user", "content": f"What is {i} + {2 * i + 3}?"},), gold=str(3 * i + 3))
              for i in range(6)]
    likelihood = ScoringSettings(metric=MetricSettings(capability="likelihood"))
    rescorer = DMCRescorer(target, capability_size=None, target_size=None, scoring=likelihood, metric="dmc_v2")
    cur = DMCCurriculumCallback(pool, rescore_every=2, probe_size=None, policy="softmax:0.05", seed=3,
                                rescore_fn=rescorer, student=st)
    probes = [CandidateDataset(n, list(s)) for n, s in cur.probes.items()]
    expected = score(probes, st, eval_set=target, use_cache=False,
                     settings=ScoringSettings(metrics=("dmc_v2",), metric=MetricSettings(capability="likelihood")))
    assert "attempts" not in expected.meta["run"]
    generated = []  # calls of the model's generate (dmc.students.generation runs every attempt through it)
    original = st.model.generate
    st.model.generate = lambda *a, **k: generated.append(1) or original(*a, **k)
    try:
        train(st, None, TrainConfig(output_dir=str(tmp_path / "dyn"), steps=4, batch_size=4, bf16=False,
                                    learning_rate=1e-3), callbacks=[cur])
    finally:
        st.model.generate = original
    first = cur.history[0]
    assert first["scores"] == pytest.approx(dict(zip(expected.datasets["dataset"], expected.datasets["dmc_v2"])))
    assert generated == [] and len(cur.history) == 2
    for e in cur.history:
        assert e["timing"]["attempts"] is None and e["timing"]["answers"] is not None
        assert set(e["details"]["step"]) >= {"R2", "logit_gap", "dmc_se"}
        assert all(v is not None and v >= 0 for n, v in e["noise"].items() if e["scores"][n] is not None)


def test_probes_and_attempted_questions_are_shared_across_datasets(tiny_student_factory):
    from dmc.curriculum.rescore import DMCRescorer

    # two teachers answering the same 20 questions, and one with other questions
    a, b, other = _dataset("a", 20, "step"), _dataset("b", 20, "terse"), _dataset("c", 20, "step", offset=100)
    cur = DMCCurriculumCallback([a, b, other], probe_size=6, rescore_fn=lambda s, p: {}, seed=4)
    qa = [s.question_hash for s in cur.probes["a"]]
    assert len(qa) == 6 and qa == [s.question_hash for s in cur.probes["b"]]
    assert not set(qa) & {s.question_hash for s in cur.probes["c"]}
    again = DMCCurriculumCallback([a, b, other], probe_size=6, rescore_fn=lambda s, p: {}, seed=4)
    assert again.probes == cur.probes  # a fixed, seeded probe
    assert DMCCurriculumCallback([a, b, other], probe_size=6, seed=5).probes != cur.probes

    target = [EvalItem(id=f"e{i}", prompt=({"role": "user", "content": f"q{i}"},), gold="1") for i in range(10)]
    r = DMCRescorer(target, capability_size=3, target_size=4, seed=4)
    qs = r.capability_questions(cur.probes)
    assert len(qs) == 9 and len({q.question_hash for q in qs}) == 6  # a and b share their 3 questions
    assert len(r.target) == 4
    st = tiny_student_factory("chatml")
    samples = [s for v in cur.probes.values() for s in v]
    longest = max(len(st.encode(s.prompt, s.response).response_ids) for s in samples)
    assert r._settings_for(st, samples).attempts.max_new_tokens == math.ceil(1.5 * longest) + 1
    assert DMCRescorer(attempt_budget=7)._settings_for(st, samples).attempts.max_new_tokens == 7
    with pytest.raises(ValueError, match="attempt_budget"):
        DMCRescorer(attempt_budget=0)


def test_initial_scores_set_the_first_mixture_without_a_rescore(tmp_path, tiny_student_factory, pool):
    calls = []

    def rescore(student, probes):
        calls.append(1)
        return {"step": 0.1, "terse": 0.9, "mixed": 0.2}

    st = tiny_student_factory("chatml")
    cur = DMCCurriculumCallback(pool, rescore_every=3, probe_size=4, policy="argmax", rescore_fn=rescore, seed=1,
                                student=st, initial_scores={"step": 0.8, "terse": 0.1, "mixed": None})
    train(st, None, TrainConfig(output_dir=str(tmp_path / "r"), steps=4, batch_size=2, bf16=False), callbacks=[cur])
    first, second = cur.history[0], cur.history[1]
    assert first["step"] == 0 and first["mixture"]["step"] == 1.0 and first["source"] == "initial_scores"
    assert first["scores"]["mixed"] is None  # an unscored dataset is recorded as such, never picked
    assert second["step"] == 3 and "source" not in second and len(calls) == 1 and cur.n_rescores == 1
    with pytest.raises(KeyError, match=r"missing \['mixed'\]"):
        DMCCurriculumCallback(pool, rescore_fn=rescore, initial_scores={"step": 0.8, "terse": 0.1})
    with pytest.raises(KeyError, match=r"unknown \['other'\]"):
        DMCCurriculumCallback(pool, rescore_fn=rescore, initial_scores={"step": 0.8, "terse": 0.1, "mixed": 0, "other": 1})


def test_a_fixed_schedule_trains_on_each_dataset_in_its_phase(tmp_path, tiny_student_factory, pool):
    from dmc.curriculum import build_curriculum

    st = tiny_student_factory("chatml")
    cur, info = build_curriculum("schedule:terse,step@0.5", pool, st)
    assert info["schedule"] == [{"dataset": "terse", "start": 0}, {"dataset": "step", "start": 0.5}]
    train(st, None, TrainConfig(output_dir=str(tmp_path / "s"), steps=6, batch_size=4, bf16=False), callbacks=[cur])
    sel = np.asarray(cur.schedule.selections)  # rows per dataset, per micro-batch
    names = cur.names
    assert sel.shape == (6, 3)
    assert sel[:3, names.index("terse")].tolist() == [4, 4, 4] and sel[3:, names.index("step")].tolist() == [4, 4, 4]
