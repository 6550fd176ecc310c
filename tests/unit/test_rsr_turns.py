"""RSR over every assistant turn: the students' assistant spans, the tokens table's prev_* columns
(TokenStatsSettings.turns) and the rsr_turns metric setting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_metrics_helpers import FakeGrader, pool, sample, token_row, tokens_table

from dmc.data.schema import Sample
from dmc.metrics import MetricSettings, score_tables
from dmc.metrics.baselines import RSR_NEEDS_ALL_TURNS
from dmc.stats import TokenStatsSettings, compute_token_stats
from dmc.stats.tables import TOKENS_SCHEMA
from dmc.students import tiny_student

PREV_COLUMNS = ("prev_turns", "prev_turn_tokens", "prev_token_ids", "prev_logprob", "prev_rank")
FIRST = "We add: 2 + 2 = 4.\nThe answer is 4."
SECOND = " 3 + 3 = 6. "  # whitespace around it: llama3's template trims it
PROMPT = (
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": FIRST},
    {"role": "user", "content": "And 3 + 3?"},
    {"role": "assistant", "content": SECOND},
    {"role": "user", "content": "And 5 + 5?"},
)
RESPONSE = "5 + 5 = 10. The answer is 10."


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- (a) assistant spans ----------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["chatml", "llama3"])
def test_assistant_spans_cover_each_assistant_content(template):
    s = tiny_student(template)
    enc = s.encode(PROMPT, RESPONSE, all_turns=True)
    tok = s.tokenizer
    shown = [FIRST, SECOND] if template == "chatml" else [FIRST, SECOND.strip()]
    assert len(enc.prev_spans) == 2
    for (a, b), text in zip(enc.prev_spans, shown):
        assert 1 <= a < b <= enc.response_start
        assert tok.decode(enc.input_ids[a:b]) == text
        # exactly: the tokens just outside the span are template tokens, not content
        assert tok.decode(enc.input_ids[a - 1:b]) != text and tok.decode(enc.input_ids[a:b + 1]) != text
    assert enc.prev_spans[0][1] <= enc.prev_spans[1][0]
    assert tok.decode(enc.input_ids[enc.response_start:enc.response_end]) == RESPONSE
    # The response masking itself does not change.
    plain = s.encode(PROMPT, RESPONSE)
    assert plain.prev_spans == ()
    assert (plain.input_ids, plain.response_start, plain.response_end, plain.offsets) == \
        (enc.input_ids, enc.response_start, enc.response_end, enc.offsets)


def test_assistant_spans_plain_format_and_truncation():
    s = tiny_student("none")
    enc = s.encode(PROMPT, RESPONSE, all_turns=True)
    texts = [s.tokenizer.decode(enc.input_ids[a:b]) for a, b in enc.prev_spans]
    assert [t.strip() for t in texts] == [FIRST, SECOND.strip()]
    # Truncation inside the second earlier turn: the first is whole, the second cut, the response gone.
    a2, b2 = enc.prev_spans[1]
    cut = s.encode(PROMPT, RESPONSE, max_length=a2 + 1, all_turns=True)
    assert cut.truncated and cut.n_response_tokens == 0
    assert cut.prev_spans == (enc.prev_spans[0], (a2, a2 + 1))
    # No earlier assistant turn: no spans.
    assert s.encode(PROMPT[:2], RESPONSE, all_turns=True).prev_spans == ()


# -- (b) RSR by hand ---------------------------------------------------------------------------------


def _rsr_pool():
    a = sample("d", "a", "Q one?", "so it is", "1")  # 3 toy tokens
    b = sample("d", "b", "Q two?", "ok go", "2")  # 2 toy tokens, no earlier assistant turn
    ra = token_row(a, rank=[1, 3, 200], logprob=[-0.5, -1.0, -2.5])
    ra.update(prev_turns=1, prev_turn_tokens=[2], prev_token_ids=[7, 8], prev_logprob=[-1.0, -3.0],
              prev_rank=[2, 150])
    rb = token_row(b, rank=[2, 2], logprob=[-1.0, -1.0])
    rb.update(prev_turns=0, prev_turn_tokens=None, prev_token_ids=None, prev_logprob=None, prev_rank=None)
    return [a, b], [ra, rb]


def test_rsr_last_vs_all_by_hand():
    s, rows = _rsr_pool()
    toks = tokens_table(rows)
    last = score_tables(pool(*s), toks, None, metrics=["rsr"], grader=FakeGrader())
    every = score_tables(pool(*s), toks, None, metrics=["rsr"], grader=FakeGrader(),
                         settings=MetricSettings(rsr_turns="all"))
    pl, pa_ = last.samples.set_index("sample_id")["rsr"], every.samples.set_index("sample_id")["rsr"]
    assert pl["a"] == pytest.approx((1 + 3 + 100) / 4.0)  # = 26, the response only (default)
    assert pa_["a"] == pytest.approx((2 + 100 + 1 + 3 + 100) / (1.0 + 3.0 + 0.5 + 1.0 + 2.5))  # = 25.75
    assert pl["b"] == pa_["b"] == pytest.approx(2.0)  # no earlier assistant turn: the same
    assert last.datasets.loc[0, "rsr"] == pytest.approx(((104 / 3) + 2) / 2 / (((4.0 / 3) + 1.0) / 2))
    assert every.datasets.loc[0, "rsr"] == pytest.approx(((206 / 5) + 2) / 2 / (((8.0 / 5) + 1.0) / 2))


def test_rsr_all_needs_prev_columns():
    s, rows = _rsr_pool()
    for r in rows:  # a table computed with turns="last"
        r.update(prev_turns=None, prev_turn_tokens=None, prev_token_ids=None, prev_logprob=None, prev_rank=None)
    old = [{k: v for k, v in r.items() if not k.startswith("prev_")} for r in rows]  # a table from before
    for toks in (tokens_table(rows), tokens_table(old)):
        rep = score_tables(pool(*s), toks, None, metrics=["rsr"], grader=FakeGrader(),
                           settings=MetricSettings(rsr_turns="all"))
        per = rep.samples.set_index("sample_id")
        assert per["rsr"].isna().all()
        assert (per["rsr_reason"] == RSR_NEEDS_ALL_TURNS).all()
        assert math.isnan(rep.datasets.loc[0, "rsr"])
        assert rep.datasets.loc[0, "nan_reasons"]["rsr"] == {RSR_NEEDS_ALL_TURNS: 2}
        # The default still scores the response.
        rep = score_tables(pool(*s), toks, None, metrics=["rsr"], grader=FakeGrader())
        assert rep.samples["rsr"].notna().all()


def test_settings():
    assert TokenStatsSettings().turns == "last" and MetricSettings().rsr_turns == "last"
    assert TokenStatsSettings(turns="all").settings_hash != TokenStatsSettings().settings_hash
    with pytest.raises(ValueError, match="turns"):
        TokenStatsSettings(turns="first")
    with pytest.raises(ValueError, match="rsr_turns"):
        MetricSettings(rsr_turns="some")


# -- (c), (d) the tokens table -----------------------------------------------------------------------


def _samples() -> list[Sample]:
    return [
        Sample(id="multi", prompt=PROMPT, response=RESPONSE, gold="10", dataset="D"),
        Sample(id="single", prompt=PROMPT[:2], response=FIRST, gold="4", dataset="D"),
        Sample(id="two", prompt=PROMPT[:4], response="6", gold="6", dataset="D"),
    ]


@pytest.mark.parametrize("template", ["chatml", "llama3"])
def test_prev_columns_equal_scoring_each_turn_last(template):
    student = tiny_student(template, seed=1)
    samples = _samples()
    st = TokenStatsSettings(turns="all", batch_tokens=64)
    table = compute_token_stats(student, samples, st, progress=False)
    assert list(table.columns) == list(TOKENS_SCHEMA.names)
    df = table.set_index("sample_id")
    # Each earlier turn scored as the last turn of the conversation cut after it.
    shorter = [Sample(id="t1", prompt=PROMPT[:2], response=FIRST, dataset="D"),
               Sample(id="t2", prompt=PROMPT[:4], response=SECOND, dataset="D")]
    ref = compute_token_stats(student, shorter, TokenStatsSettings(), progress=False).set_index("sample_id")
    m = df.loc["multi"]
    assert m["prev_turns"] == 2
    assert m["prev_turn_tokens"].tolist() == [ref.loc["t1", "n_tokens"], ref.loc["t2", "n_tokens"]]
    for col in ("token_ids", "rank"):
        want = np.concatenate([ref.loc["t1", col], ref.loc["t2", col]])
        assert m[f"prev_{col}"].tolist() == want.tolist(), col
    want = np.concatenate([ref.loc["t1", "logprob"], ref.loc["t2", "logprob"]])
    assert m["prev_logprob"].dtype == np.float32 and m["prev_rank"].dtype == np.int32
    np.testing.assert_allclose(m["prev_logprob"], want, rtol=0, atol=1e-5)
    two = df.loc["two"]
    assert two["prev_turns"] == 1 and two["prev_turn_tokens"].tolist() == [ref.loc["t1", "n_tokens"]]
    np.testing.assert_allclose(two["prev_logprob"], ref.loc["t1", "logprob"], rtol=0, atol=1e-5)
    # No earlier assistant turn: 0 turns, null lists.
    one = df.loc["single"]
    assert one["prev_turns"] == 0
    assert all(one[c] is None for c in PREV_COLUMNS[1:])


def test_turns_last_table_unchanged():
    student = tiny_student("chatml", seed=2)
    samples = _samples()
    last = compute_token_stats(student, samples, TokenStatsSettings(batch_tokens=64), progress=False)
    every = compute_token_stats(student, samples, TokenStatsSettings(turns="all", batch_tokens=64), progress=False)
    assert list(last.columns) == list(every.columns) == list(TOKENS_SCHEMA.names)
    assert last[list(PREV_COLUMNS)].isna().all().all()
    # The response's columns are the same under both settings.
    for col in ("sample_hash", "question_hash", "dataset", "sample_id", "n_tokens", "truncated"):
        assert last[col].tolist() == every[col].tolist(), col
    for col in ("token_ids", "rank", "char_start", "char_end"):
        assert [x.tolist() for x in last[col]] == [x.tolist() for x in every[col]], col
    for col in ("logprob", "entropy"):
        for x, y in zip(last[col], every[col]):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-5)
    # RSR over the last turn reads the same numbers from either table.
    a = score_tables(pool(*samples), last, None, metrics=["rsr"], grader=FakeGrader()).samples["rsr"]
    b = score_tables(pool(*samples), every, None, metrics=["rsr"], grader=FakeGrader()).samples["rsr"]
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-5)
