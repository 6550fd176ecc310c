"""One policy syntax (NAME[:ARG]) and one weights family, shared by selection and the curriculum."""

from __future__ import annotations

import dataclasses
import inspect
import math

import numpy as np
import pandas as pd
import pytest

from dmc.cli.select import SelectCommand
from dmc.curriculum.policies import (
    SPELLINGS,
    ArgmaxPolicy,
    ProportionalPolicy,
    SoftmaxPolicy,
    make_policy,
)
from dmc.data.schema import CandidateDataset, Sample
from dmc.selection import POLICIES, parse_policy, select
from dmc.selection.select import GRAMMAR
from dmc.selection.weights import (
    DEFAULT_TAU,
    NoFiniteScore,
    PolicyArg,
    parse_policy_spec,
    proportional_weights,
    rank_by_score,
    softmax_weights,
    top1,
    unscored_note,
)

# -- the parser ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec,expected", [
    ("top1", ("top1", None)),
    ("topk:3", ("topk", 3)),
    ("topk:+2", ("topk", 2)),
    ("softmax", ("softmax", None)),
    ("softmax:0.1", ("softmax", 0.1)),
    ("softmax:1e-3", ("softmax", 0.001)),
    ("proportional", ("proportional", None)),
    ("samples:top-fraction", ("samples:top-fraction", None)),
    ("samples:top-fraction:0.3", ("samples:top-fraction", 0.3)),
    ("samples:top-fraction:1", ("samples:top-fraction", 1.0)),
    (" top1 ", ("top1", None)),
])
def test_selection_specs_parse(spec, expected):
    parsed = parse_policy(spec)
    assert tuple(parsed) == expected and (parsed.name, parsed.arg) == expected
    assert type(parsed.arg) is type(expected[1])


@pytest.mark.parametrize("spec,message", [
    ("topk", "selection policy 'topk' needs K (a positive integer), e.g. topk:3"),
    ("topk:", "selection policy 'topk' needs K"),
    ("topk:0", "selection policy 'topk:0': K must be a positive integer (e.g. topk:3), got '0'"),
    ("topk:x", "K must be a positive integer"),
    ("topk:1.5", "K must be a positive integer"),
    ("softmax:0", "selection policy 'softmax:0': TAU must be a number > 0 (e.g. softmax:0.05), got '0'"),
    ("softmax:-1", "TAU must be a number > 0"),
    ("softmax:abc", "TAU must be a number > 0"),
    ("softmax:nan", "TAU must be a number > 0"),
    ("softmax:inf", "TAU must be a number > 0"),
    ("softmax:", "selection policy 'softmax' needs TAU"),
    ("samples:top-fraction:1.5", "F must be a number in (0, 1]"),
    ("samples:top-fraction:0", "F must be a number in (0, 1]"),
    ("proportional:2", "selection policy 'proportional' takes no argument, got 'proportional:2'"),
    ("top1:1", "selection policy 'top1' takes no argument"),
    ("greedy", "unknown selection policy 'greedy'; choose one of top1, topk:K, proportional, softmax[:TAU], "
               "samples:top-fraction[:F]"),
    ("argmax", "unknown selection policy 'argmax'"),
    ("samples", "unknown selection policy 'samples'"),
    ("mix:softmax", "selection policy 'mix:softmax' is now spelled 'softmax[:TAU]'; the temperature is inline"),
    ("mix:softmax:0.1", "is now spelled 'softmax[:TAU]'"),
    ("mix:proportional", "selection policy 'mix:proportional' is now spelled 'proportional'"),
])
def test_selection_specs_rejected_with_a_clear_message(spec, message):
    with pytest.raises(ValueError) as e:
        parse_policy(spec)
    assert message in str(e.value)


def test_usage_lists_the_spellings():
    assert POLICIES == ("top1", "topk:K", "proportional", "softmax[:TAU]", "samples:top-fraction[:F]")
    assert SPELLINGS == ("argmax[:DWELL]", "softmax[:TAU]", "proportional")


def test_generic_parser_with_own_grammar():
    grammar = {"every": PolicyArg("N", int, lambda x: x >= 2, "an integer >= 2", "4", required=True),
               "every:other": None}
    assert parse_policy_spec("every:3", grammar, what="schedule") == ("every", 3)
    assert parse_policy_spec("every:other", grammar, what="schedule") == ("every:other", None)  # longest name
    with pytest.raises(ValueError, match=r"schedule 'every:1': N must be an integer >= 2 \(e.g. every:4\)"):
        parse_policy_spec("every:1", grammar, what="schedule")
    with pytest.raises(TypeError, match="must be a string"):
        parse_policy_spec(3, grammar)  # type: ignore[arg-type]


def test_select_takes_tau_and_fraction_inline_only():
    params = inspect.signature(select).parameters
    assert "tau" not in params and "fraction" not in params
    cli = {f.name for f in dataclasses.fields(SelectCommand)}
    assert "tau" not in cli and "fraction" not in cli and "policy" in cli
    assert set(GRAMMAR) == {"top1", "topk", "proportional", "softmax", "samples:top-fraction"}


def test_select_records_inline_arguments_and_refuses_old_spelling():
    pool = [CandidateDataset(d, [Sample(id=f"{d}{i}", prompt=({"role": "user", "content": f"q{i}"},),
                                        response=f"r{i}", gold=str(i), dataset=d) for i in range(4)])
            for d in ("A", "B")]
    sc = pd.DataFrame({"dataset": ["A", "B"], "dmc": [0.5, 0.4]})
    sel = select(sc, pool, policy="softmax:0.2", budget=4)
    assert sel.manifest["params"]["tau"] == 0.2 and sel.manifest["weights_reason"] == "softmax(dmc/0.2)"
    assert select(sc, pool, policy="softmax", budget=4).manifest["params"]["tau"] == DEFAULT_TAU
    assert select(sc, pool, policy="topk:2").manifest["params"]["k"] == 2
    with pytest.raises(ValueError, match="now spelled 'softmax"):
        select(sc, pool, policy="mix:softmax", budget=4)
    with pytest.raises(ValueError, match="within applies only to samples:top-fraction"):
        select(sc, pool, policy="top1", within=True)


# -- the curriculum's spellings -------------------------------------------------------------------


def test_curriculum_specs():
    assert isinstance(make_policy("argmax"), ArgmaxPolicy) and make_policy("argmax").min_dwell == 2
    assert make_policy("argmax", min_dwell=4).min_dwell == 4
    assert make_policy("argmax:3").min_dwell == 3
    assert make_policy("softmax").tau == DEFAULT_TAU and make_policy("softmax", tau=0.3).tau == 0.3
    assert make_policy("softmax:0.5").tau == 0.5
    assert isinstance(make_policy("proportional"), ProportionalPolicy)
    pol = SoftmaxPolicy(0.1)
    assert make_policy(pol) is pol


@pytest.mark.parametrize("spec,message", [
    ("argmax:0", "mixture policy 'argmax:0': DWELL must be a positive integer (re-scores) (e.g. argmax:3), got '0'"),
    ("argmax:1.5", "DWELL must be a positive integer"),
    ("softmax:0", "mixture policy 'softmax:0': TAU must be a number > 0"),
    ("softmax:x", "TAU must be a number > 0"),
    ("proportional:1", "mixture policy 'proportional' takes no argument"),
    ("topk:2", "unknown mixture policy 'topk:2'; choose one of argmax[:DWELL], softmax[:TAU], proportional"),
    ("greedy", "unknown mixture policy 'greedy'"),
    ("mix:softmax", "mixture policy 'mix:softmax' is now spelled 'softmax[:TAU]'"),
])
def test_curriculum_specs_rejected(spec, message):
    with pytest.raises(ValueError) as e:
        make_policy(spec)
    assert message in str(e.value)


# -- one weights family -----------------------------------------------------------------------------


def test_softmax_weights_shared():
    scores = {"a": 0.2, "b": 0.4, "c": math.nan, "d": None}
    w = softmax_weights(scores, 0.1)
    e = np.exp(np.array([0.2, 0.4]) / 0.1)
    assert list(w) == ["a", "b"] and list(w.values()) == pytest.approx((e / e.sum()).tolist())
    d = SoftmaxPolicy(0.1).decide(["a", "b", "c"], {"a": 0.2, "b": 0.4, "c": math.nan}, None)
    assert d.weights == pytest.approx([w["a"], w["b"], 0.0])
    assert d.reason == "softmax(score/0.1); unscored (weight 0): ['c']"
    with pytest.raises(ValueError, match="tau must be > 0"):
        softmax_weights({"a": 1.0}, 0.0)
    with pytest.raises(NoFiniteScore, match="no dataset has a finite score"):
        softmax_weights({"a": math.nan}, 0.1)


def test_proportional_weights_shared():
    w, why = proportional_weights({"a": 0.1, "b": 0.3, "c": -0.2, "d": math.nan})
    assert w == pytest.approx({"a": 0.25, "b": 0.75, "c": 0.0}) and why == "proportional to score"
    u, why0 = proportional_weights({"a": 0.0, "b": -1.0})
    assert u == {"a": 0.5, "b": 0.5} and why0 == "all scores are <= 0: uniform over the scored datasets"
    d = ProportionalPolicy().decide(["a", "b", "c"], {"a": 0.0, "b": -1.0, "c": math.nan}, None)
    assert d.weights == [0.5, 0.5, 0.0] and d.reason == why0 + "; unscored (weight 0): ['c']"
    with pytest.raises(NoFiniteScore):
        proportional_weights({"a": None})


def test_rank_and_top1_by_direction():
    scores = {"a": 0.3, "b": 0.5, "c": 0.5, "d": math.nan, "e": 0.1}
    assert rank_by_score(scores) == ["b", "c", "a", "e"]  # ties keep the order given
    assert rank_by_score(scores, descending=False) == ["e", "a", "b", "c"]
    assert top1(scores) == "b" and top1(scores, descending=False) == "e"
    assert ArgmaxPolicy(1).decide(list(scores), scores, None).weights == [0.0, 1.0, 0.0, 0.0, 0.0]
    with pytest.raises(NoFiniteScore):
        top1({"a": math.nan})
    assert unscored_note({"a": 1.0}) == "" and unscored_note({"a": None}) == "; unscored (weight 0): ['a']"


def test_all_nan_curriculum_keeps_mixture_selection_raises():
    cur = np.array([0.25, 0.75])
    for pol in (SoftmaxPolicy(0.1), ProportionalPolicy()):
        d = pol.decide(["a", "b"], {"a": math.nan, "b": math.nan}, cur)
        assert d.weights == [0.25, 0.75] and "unchanged" in d.reason
        with pytest.raises(ValueError, match="all NaN"):
            pol.decide(["a", "b"], {"a": math.nan, "b": math.nan}, None)
    pool = [CandidateDataset("a", [Sample(id="x", prompt=({"role": "user", "content": "q"},), response="r")])]
    with pytest.raises(ValueError, match="no dataset in the pool has a finite"):
        select(pd.DataFrame({"dataset": ["a"], "dmc": [math.nan]}), pool, policy="softmax", budget=1)
