"""Re-scores sized by the decision they serve: argmax asks for more evidence when a switch is
undecided, the re-scorer attempts more probe questions of the contenders, and probes grow with the
dataset (`probe_size: auto`)."""

from __future__ import annotations

import math

import pytest
import torch

from dmc.curriculum import ArgmaxPolicy, CurriculumSettings, DMCCurriculumCallback, SoftmaxPolicy
from dmc.curriculum.rescore import DMCRescorer
from dmc.curriculum.settings import resolve_probe_size
from conftest import addition_dataset as _dataset
from dmc.data.schema import EvalItem
from dmc.metrics import MetricSettings
from dmc.scoring import ScoringSettings
from dmc.training import StopAtStep, TrainConfig, train


# -- the probe's size -----------------------------------------------------------------------------------

def test_auto_probe_is_a_sixteenth_of_the_dataset_between_16_and_64():
    assert CurriculumSettings().probe_size == "auto"
    assert [resolve_probe_size("auto", n) for n in (10, 128, 192, 512, 1000, 4096, 10**5)] == [16, 16, 16, 32, 62, 64, 64]
    assert resolve_probe_size(8, 4096) == 8 and resolve_probe_size(None, 4096) is None
    assert CurriculumSettings(probe_size="24").probe_size == 24  # the CLI and YAML hand numbers over as text
    for bad in (0, "big", True):
        with pytest.raises(ValueError, match="probe_size"):
            CurriculumSettings(probe_size=bad)


def test_auto_probes_follow_each_datasets_size():
    small, big = _dataset("small", 40, "step"), _dataset("big", 600, "terse", offset=1000)
    cur = DMCCurriculumCallback([small, big], rescore_fn=lambda s, p: {}, seed=2)
    assert {n: len(p) for n, p in cur.probes.items()} == {"small": 16, "big": 37}
    # held out from training: 37 of 600 rows; the small dataset's 16 of 40 as well (less than half)
    assert len(cur.held_out_rows()) == 16 + 37


# -- the policy asks ------------------------------------------------------------------------------------

NAMES = ["a", "b", "c"]


def test_argmax_names_the_contenders_of_an_undecided_switch():
    pol = ArgmaxPolicy(min_dwell=1, confidence=0.9)
    assert pol.undecided(NAMES, {"a": 0.5, "b": 0.6, "c": 0.1}) == []  # nothing chosen yet
    pol.decide(NAMES, {"a": 0.5, "b": 0.4, "c": 0.1}, None)
    wide, narrow = {n: 0.05 for n in NAMES}, {n: 0.0125 for n in NAMES}
    # b leads by 0.05 within the margin 1.28 * hypot(0.05, 0.05) = 0.091: undecided between a and b
    assert pol.undecided(NAMES, {"a": 0.40, "b": 0.45, "c": 0.1}, wide) == ["a", "b"]
    assert pol.undecided(NAMES, {"a": 0.40, "b": 0.45, "c": 0.1}, narrow) == []  # the gap clears 0.023: decided
    assert pol.undecided(NAMES, {"a": 0.45, "b": 0.40, "c": 0.1}, wide) == []  # the active one leads
    assert pol.undecided(NAMES, {"a": math.nan, "b": 0.4, "c": 0.1}, wide) == []  # unscored: the best leads
    assert ArgmaxPolicy(min_dwell=1, confidence=0.0).undecided(NAMES, {"a": 0.4, "b": 0.45, "c": 0.1}, wide) == []
    dwelling = ArgmaxPolicy(min_dwell=3, confidence=0.9)
    dwelling.decide(NAMES, {"a": 0.5, "b": 0.4, "c": 0.1}, None)
    assert dwelling.undecided(NAMES, {"a": 0.40, "b": 0.45, "c": 0.1}, wide) == []  # may not switch yet anyway
    assert SoftmaxPolicy().undecided(NAMES, {"a": 0.40, "b": 0.45, "c": 0.1}, wide) == []


# -- the callback gathers the evidence --------------------------------------------------------------------

class _Halving:
    """A re-scorer whose standard errors halve with each refinement, up to `most` of them."""

    def __init__(self, scores, se, most):
        self.scores, self.se, self.most = scores, se, most
        self.asked: list[list[str]] = []
        self.last_details: dict = {}
        self.last_timing: dict = {}

    def _out(self):
        k = len(self.asked)
        self.last_details = {n: {"dmc_se": self.se / 2**k} for n in self.scores}
        self.last_timing = {"refinements": k}
        return dict(self.scores)

    def __call__(self, student, probes):
        self.asked = []
        return self._out()

    def refine(self, student, datasets):
        if len(self.asked) >= self.most:
            return None
        self.asked.append(list(datasets))
        return self._out()


class _Student:
    model = torch.nn.Linear(2, 2)

    def refresh_fingerprint(self):
        pass


def _callback(fn):
    pool = [_dataset("a", 40, "step"), _dataset("b", 40, "terse", offset=100)]
    cur = DMCCurriculumCallback(pool, policy="argmax:1", rescore_fn=fn, student=_Student(), seed=0)
    cur._update(0, None, None, {"a": 0.6, "b": 0.5})  # start on a
    return cur


def test_an_undecided_switch_is_refined_until_the_evidence_decides():
    # b leads by 0.05; margin 1.28 * sqrt(2) * se: 0.181, 0.091, 0.045 after two refinements: switch
    fn = _Halving({"a": 0.40, "b": 0.45}, se=0.1, most=5)
    cur = _callback(fn)
    cur._update(10, None, None)
    assert fn.asked == [["a", "b"], ["a", "b"]]
    event = cur.history[-1]
    assert event["mixture"] == {"a": 0.0, "b": 1.0} and "switch a -> b" in event["reason"]
    assert event["timing"]["refinements"] == 2 and event["noise"] == {"a": 0.025, "b": 0.025}


def test_when_the_evidence_runs_out_the_current_dataset_stays():
    fn = _Halving({"a": 0.40, "b": 0.45}, se=0.4, most=2)  # margins 0.72, 0.36, 0.18: never cleared
    cur = _callback(fn)
    cur._update(10, None, None)
    assert len(fn.asked) == 2
    assert cur.history[-1]["mixture"] == {"a": 1.0, "b": 0.0} and "within noise margin" in cur.history[-1]["reason"]


class _WeightedHalving:
    """Scores that follow the weights (any drift between two runs shows in them) and standard errors
    that halve with each refinement, up to five: terse leads step by a weight-dependent gap."""

    def __init__(self):
        self.k = 0
        self.last_details: dict = {}
        self.last_timing: dict = {}

    def _out(self, student):
        w = sum(p.detach().double().abs().sum().item() for p in student.model.parameters())
        lead = (w * 1e3) % 0.2 - 0.1  # in [-0.1, 0.1)
        self.last_details = {n: {"dmc_se": 0.2 / 2**self.k} for n in ("step", "terse", "mixed")}
        self.last_timing = {"refinements": self.k}
        return {"step": 0.5, "terse": 0.5 + lead, "mixed": 0.1}

    def __call__(self, student, probes):
        self.k = 0
        return self._out(student)

    def refine(self, student, datasets):
        if self.k >= 5:
            return None
        self.k += 1
        return self._out(student)


def _train(tmp_path, name, tiny_student_factory, *, stop=None, resume=False):
    pool = [_dataset("step", 12, "step"), _dataset("terse", 10, "terse"), _dataset("mixed", 6, "step", offset=40)]
    st = tiny_student_factory("chatml")
    cur = DMCCurriculumCallback(pool, rescore_every=1, probe_size=4, policy="argmax:1", rescore_fn=_WeightedHalving(),
                                seed=1, student=st)
    cfg = TrainConfig(output_dir=str(tmp_path / name), steps=8, batch_size=3, save_every=4, bf16=False,
                      learning_rate=1e-2)
    train(st, None, cfg, callbacks=[cur] + ([StopAtStep(stop)] if stop else []), resume_from_checkpoint=resume or None)
    return cur


def test_a_resumed_run_refines_and_decides_as_the_uninterrupted_one(tmp_path, tiny_student_factory):
    full = _train(tmp_path, "full", tiny_student_factory)
    _train(tmp_path, "split", tiny_student_factory, stop=4)
    resumed = _train(tmp_path, "split", tiny_student_factory, resume=True)
    # refinements happened and decided both ways, so the comparison is not vacuous
    refined = [e for e in full.history if e.get("timing", {}).get("refinements")]
    assert refined and any("switch" in e["reason"] for e in full.history)
    key = [(e["step"], e["mixture"], e["reason"], e.get("timing")) for e in full.history]
    assert [(e["step"], e["mixture"], e["reason"], e.get("timing")) for e in resumed.history] == key
    assert resumed.schedule.selections == full.schedule.selections


# -- the re-scorer attempts more questions --------------------------------------------------------------------

def test_refine_doubles_the_contenders_questions_and_attempts_only_new_ones(tmp_path, tiny_student_factory):
    x, y = _dataset("x", 12, "step"), _dataset("y", 12, "terse", offset=100)  # no question in common
    st = tiny_student_factory("chatml")
    train(st, x.samples + y.samples, TrainConfig(output_dir=str(tmp_path / "warm"), steps=40, batch_size=4,
                                                 learning_rate=1e-2, bf16=False, lr_scheduler="constant",
                                                 save_model=False))
    target = [EvalItem(id=f"e{i}", prompt=({"role": "user", "content": f"What is {50 + i} + {2 * i + 3}?"},),
                       gold=str(3 * i + 53)) for i in range(6)]  # none of the pool's questions
    probes = {"x": x.samples, "y": y.samples}
    r = DMCRescorer(target, capability_size=2, max_capability_size=8, target_size=None, attempt_budget=24, seed=1)
    first = r(st, probes)
    assert {n: d["n_questions"] for n, d in r.last_details.items()} == {"x": 2, "y": 2}
    assert r.last_timing["n_questions"] == 2 + 2 + 6 and r.last_timing["refinements"] == 0
    r.refine(st, ["x"])
    assert {n: d["n_questions"] for n, d in r.last_details.items()} == {"x": 4, "y": 2}
    assert r.last_timing["n_questions"] == 12  # the 2 new questions only
    refined = r.refine(st, ["x"])
    assert r.last_details["x"]["n_questions"] == 8 and r.last_timing["refinements"] == 2
    assert r.refine(st, ["x"]) is None  # max_capability_size reached
    assert refined["y"] == first["y"]  # the other dataset's evidence is unchanged
    with pytest.raises(RuntimeError, match="re-score first"):
        DMCRescorer(target).refine(st, ["x"])

    # with the gold answers' likelihood (v2) the capability is continuous, so the merged tables show: refining
    # x to 8 questions gives what scoring x's first 8 questions from the start gives
    likelihood = ScoringSettings(metric=MetricSettings(capability="likelihood"))
    v2 = dict(target_size=None, scoring=likelihood, metric="dmc_v2", seed=1)
    r = DMCRescorer(target, capability_size=2, max_capability_size=8, **v2)
    before = r(st, probes)
    gap = r.last_details["x"]["logit_gap"]  # x's capability less the target's
    r.refine(st, ["x"])
    refined = r.refine(st, ["x"])
    fresh = DMCRescorer(target, capability_size=8, **v2)
    again = fresh(st, {"x": x.samples})
    assert r.last_details["x"]["logit_gap"] == pytest.approx(fresh.last_details["x"]["logit_gap"], rel=1e-6)
    assert r.last_details["x"]["logit_gap"] != pytest.approx(gap)  # the evidence moved x's capability
    assert refined["x"] == pytest.approx(again["x"], rel=1e-6) and refined["y"] == before["y"]
