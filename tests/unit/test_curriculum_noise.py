"""Re-scores weighed against their noise: argmax's confidence rule, the auto re-scoring interval and
fixed schedules (the E3 oracle's strategies)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from dmc.curriculum import ArgmaxPolicy, CurriculumSettings, ScheduledCurriculum, make_policy, parse_strategy
from dmc.curriculum.policies import switch_margin
from dmc.curriculum.settings import resolve_rescore_every
from dmc.curriculum.strategies import parse_schedule
from dmc.data.schema import CandidateDataset, Sample
from dmc.validation.summaries import e3_document, rescore_noise

NAMES = ["a", "b", "c"]


def test_switch_margin_is_z_times_the_se_of_the_difference():
    # z(0.9) = 1.2816; se of a difference of independent estimates = hypot(0.03, 0.04) = 0.05
    assert switch_margin(0.03, 0.04, 0.9) == pytest.approx(1.2815516 * 0.05, rel=1e-6)
    assert switch_margin(0.03, 0.04, 0.0) == 0.0
    assert switch_margin(math.nan, 0.04, 0.9) == 0.0  # unknown noise: the point scores decide


def _decide(pol, scores, noise=None, current=None):
    return pol.decide(NAMES, scores, current, noise=noise)


def test_argmax_switches_only_when_the_gap_clears_the_noise():
    pol = ArgmaxPolicy(min_dwell=1, confidence=0.9)
    first = _decide(pol, {"a": 0.5, "b": 0.4, "c": 0.1})
    assert first.weights == [1.0, 0.0, 0.0]
    # b leads by 0.05, margin 1.28 * hypot(0.05, 0.05) = 0.091: stay on a
    stay = _decide(pol, {"a": 0.40, "b": 0.45, "c": 0.1}, {"a": 0.05, "b": 0.05, "c": 0.05}, np.array(first.weights))
    assert stay.weights == [1.0, 0.0, 0.0] and "within noise margin 0.0906" in stay.reason
    # the same lead with 4x smaller errors clears the margin (0.023): switch to b
    move = _decide(pol, {"a": 0.40, "b": 0.45, "c": 0.1}, {"a": 0.0125, "b": 0.0125, "c": 0.05}, np.array(stay.weights))
    assert move.weights == [0.0, 1.0, 0.0] and "switch a -> b" in move.reason and "noise margin 0.0227" in move.reason


def test_argmax_without_noise_or_confidence_follows_the_point_scores():
    for pol, noise in ((ArgmaxPolicy(min_dwell=1, confidence=0.9), None),
                       (ArgmaxPolicy(min_dwell=1, confidence=0.0), {"a": 1.0, "b": 1.0, "c": 1.0})):
        _decide(pol, {"a": 0.5, "b": 0.4, "c": 0.1})
        assert _decide(pol, {"a": 0.40, "b": 0.41, "c": 0.1}, noise, np.array([1.0, 0, 0])).weights == [0.0, 1.0, 0.0]


def test_argmax_leaves_a_dataset_that_can_no_longer_be_scored():
    pol = ArgmaxPolicy(min_dwell=1, confidence=0.9)
    _decide(pol, {"a": 0.5, "b": 0.4, "c": 0.1})
    d = _decide(pol, {"a": math.nan, "b": 0.4, "c": 0.1}, {"a": math.nan, "b": 0.3, "c": 0.3}, np.array([1.0, 0, 0]))
    assert d.weights == [0.0, 1.0, 0.0]


def test_confidence_reaches_the_policy_from_settings():
    assert make_policy("argmax:3", confidence=0.8).confidence == 0.8
    assert CurriculumSettings().switch_confidence == 0.9
    with pytest.raises(ValueError, match="confidence"):
        ArgmaxPolicy(confidence=1.0)
    with pytest.raises(ValueError):
        CurriculumSettings(switch_confidence=1.5)


def test_auto_rescore_interval_scales_with_the_run():
    assert CurriculumSettings().rescore_every == "auto"
    assert [resolve_rescore_every("auto", n) for n in (100, 240, 3, 1)] == [25, 60, 1, 1]
    assert CurriculumSettings(rescore_every=50).rescore_interval(1000) == 50
    # the CLI and YAML strings hand numbers over as text
    assert CurriculumSettings(rescore_every="40").rescore_every == 40
    assert CurriculumSettings(attempt_budget="7").attempt_budget == 7
    for bad in (0, -3, "often", 2.5, True):
        with pytest.raises(ValueError, match="rescore_every"):
            CurriculumSettings(rescore_every=bad)


def test_schedule_spelling():
    assert parse_schedule("schedule:easy,std@120,hard@0.75") == [("easy", 0), ("std", 120), ("hard", 0.75)]
    assert parse_schedule("schedule:a@0,b@0.5") == [("a", 0), ("b", 0.5)]
    assert parse_strategy("schedule:a,b@0.5") == ("schedule", None, None)
    for bad, msg in (("schedule:a,b", "has no @START"), ("schedule:a@5,b@9", "starts at 0"),
                     ("schedule:a,b@1.5", "fraction"), ("schedule:a,b@x", "not a step"), ("schedule:", "expected")):
        with pytest.raises(ValueError, match=msg):
            parse_strategy(bad)


def _pool():
    def ds(name):
        return CandidateDataset(name, [Sample(id=f"{name}{i}", prompt=({"role": "user", "content": f"q{i}"},),
                                              response=f"r{i}", gold="1", dataset=name) for i in range(4)])
    return [ds(n) for n in NAMES]


def test_schedule_switches_at_its_steps_whatever_the_accumulation():
    for accum in (1, 2):
        cur = ScheduledCurriculum(_pool(), [("b", 0), ("a", 3), ("c", 0.75)])
        args = SimpleNamespace(gradient_accumulation_steps=accum, output_dir="unused")
        cur.on_train_begin(args, SimpleNamespace(global_step=0, max_steps=8), None)
        # micro-batch -> dataset: b for steps 0-2, a for steps 3-5, c from step 6 (0.75 x 8)
        want = ["b"] * 3 + ["a"] * 3 + ["c"] * 2
        got = [NAMES[int(np.argmax(cur.schedule.weights_at(mb)))] for mb in range(8 * accum)]
        assert got == [w for w in want for _ in range(accum)]
        assert [(e["step"], e["reason"]) for e in cur.history] == [
            (0, "schedule: b from step 0"), (3, "schedule: a from step 3"), (6, "schedule: c from step 6")]
    with pytest.raises(KeyError, match="not candidate datasets"):
        ScheduledCurriculum(_pool(), [("zz", 0)])
    late = ScheduledCurriculum(_pool(), [("a", 0), ("b", 9)])
    with pytest.raises(ValueError, match="below the run's 8 steps"):
        late.on_train_begin(SimpleNamespace(gradient_accumulation_steps=1, output_dir="x"),
                            SimpleNamespace(global_step=0, max_steps=8), None)


def test_e3_document_reports_the_rescores_noise():
    runs = [{"seed": 0, "accuracy": 0.5, "scores": [{"step": 60, "scores": {"a": 0.3}, "noise": {"a": 0.02, "b": None}}]},
            {"seed": 1, "accuracy": 0.4, "scores": [{"step": 60, "scores": {"a": 0.3}, "noise": {"a": 0.04}}]}]
    assert rescore_noise(runs) == pytest.approx(0.03)
    doc = e3_document({"dynamic-dmc": runs, "uniform": [{"seed": 0, "accuracy": 0.3}]}, steps=240)
    assert doc["strategies"]["dynamic-dmc"]["rescore_noise"] == pytest.approx(0.03)
    assert doc["strategies"]["uniform"]["rescore_noise"] is None


def test_probes_are_held_out_of_training_unless_the_dataset_is_too_small():
    from dmc.curriculum import DMCCurriculumCallback

    def ds(name, n):
        return CandidateDataset(name, [Sample(id=f"{name}{i}", prompt=({"role": "user", "content": f"{name} q{i}"},),
                                              response=f"r{i}", gold="1", dataset=name) for i in range(n)])

    pool = [ds("big", 20), ds("small", 6)]
    cur = DMCCurriculumCallback(pool, probe_size=4, rescore_fn=lambda st, p: {"big": 0.5, "small": 0.4})
    held = cur.held_out_rows()
    probe_rows = [i for i, s in enumerate(cur.dataset.samples) if s in cur.probes["big"]]
    assert sorted(held) == sorted(probe_rows) and len(held) == 4  # small: 4 of 6 rows would be over half
    cur.schedule.set([0.5, 0.5], step=0)
    sampler = cur.sampler(batch_size=8, num_batches=20, seed=0)
    drawn = set(sampler)
    assert not drawn & set(held) and len(drawn) == 22  # every other row is drawn
    keep = DMCCurriculumCallback(pool, probe_size=4, holdout_probes=False, rescore_fn=lambda st, p: {})
    assert keep.held_out_rows() == []


def test_only_dynamic_dmc_is_keyed_by_the_re_scoring_settings():
    from dmc.curriculum.strategies import curriculum_key

    base, other = CurriculumSettings(), CurriculumSettings(switch_confidence=0.5, probe_size=32, mix_policy="proportional")
    for strategy in ("uniform", "static-dmc", "static:rsr", "schedule:a,b@0.5", "random-dataset"):
        assert curriculum_key(strategy, base) == curriculum_key(strategy, other) == {}
    assert curriculum_key("static-dmc-mix", base) != curriculum_key("static-dmc-mix", other)
    assert curriculum_key("dynamic-dmc", base) != curriculum_key("dynamic-dmc", other)
    assert curriculum_key("dynamic-dmc", base)["switch_confidence"] == 0.9
