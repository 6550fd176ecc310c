"""compute_token_stats: the tokens table, its values, truncation, IFD, caching and reuse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from dmc.data.schema import Sample
from dmc.stats import StatsCache, TokenStatsSettings, compute_token_stats
from dmc.stats.core import checked_split
from dmc.stats.tables import TOKENS_SCHEMA
from dmc.stats.tokens import load_cached_tokens
from dmc.students.tiny import tiny_student


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread, and the CPU is shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TOL = 1e-4


def make_samples(n: int, dataset: str = "A", offset: int = 0) -> list[Sample]:
    out = []
    for i in range(offset, offset + n):
        a, b = 3 * i + 1, 7 * i + 2
        steps = " ".join(f"Step {j}: {a} + {j} = {a + j}." for j in range(i % 4))
        out.append(Sample(id=f"{dataset}-{i}", prompt=({"role": "user", "content": f"What is {a} + {b}?"},),
                          response=f"{steps} {a} + {b} = {a + b}. The answer is {a + b}.".strip(),
                          gold=str(a + b), dataset=dataset))
    return out


@pytest.fixture(scope="module")
def student():
    return tiny_student("chatml", seed=0)


def naive_stats(student, s: Sample, max_length: int = 1024):
    enc = student.encode(s.prompt, s.response, max_length=max_length)
    with torch.no_grad():
        logits = student.model(torch.tensor([enc.input_ids])).logits[0].double()
    pos = torch.arange(enc.response_start - 1, enc.response_end - 1)
    tgt = torch.tensor(enc.input_ids[enc.response_start:enc.response_end])
    lsm = logits.log_softmax(-1)[pos]
    true = logits[pos, tgt]
    rank = (logits[pos] > true[:, None]).sum(-1) + 1
    return enc, lsm[torch.arange(len(tgt)), tgt], rank, -(lsm.exp() * lsm).sum(-1)


def test_table_schema_and_values_equal_naive(student):
    samples = make_samples(8)
    df = compute_token_stats(student, samples, TokenStatsSettings(batch_tokens=96), progress=False)
    assert list(df.columns) == TOKENS_SCHEMA.names
    assert df["sample_id"].tolist() == [s.id for s in samples]
    assert df["sample_hash"].tolist() == [s.hash for s in samples]
    assert df["question_hash"].tolist() == [s.question_hash for s in samples]
    assert (df["dataset"] == "A").all() and not df["truncated"].any()
    assert df["logprob_noq"].isna().all()  # IFD not requested
    for s, row in zip(samples, df.itertuples()):
        enc, lp, rank, ent = naive_stats(student, s)
        assert row.n_tokens == enc.response_end - enc.response_start == len(row.token_ids)
        assert row.token_ids.tolist() == enc.input_ids[enc.response_start:enc.response_end]
        assert np.abs(row.logprob - lp.numpy()).max() < TOL
        assert np.abs(row.entropy - ent.numpy()).max() < TOL
        assert row.rank.tolist() == rank.tolist()
        # Offsets tile the response text.
        assert "".join(s.response[a:b] for a, b in zip(row.char_start, row.char_end)) == s.response
        assert row.logprob.dtype == np.float32 and row.rank.dtype == np.int32


def test_truncation_is_flagged_and_a_prefix(student):
    s = make_samples(4)[3]
    full = compute_token_stats(student, [s], TokenStatsSettings(), progress=False).iloc[0]
    enc = student.encode(s.prompt, s.response)
    cut_at = enc.response_start + 5
    cut = compute_token_stats(student, [s], TokenStatsSettings(max_length=cut_at), progress=False).iloc[0]
    assert cut.truncated and not full.truncated
    assert cut.n_tokens == 5 < full.n_tokens
    assert cut.token_ids.tolist() == full.token_ids[:5].tolist()
    assert np.abs(cut.logprob - full.logprob[:5]).max() < TOL  # causal: the cut does not change earlier tokens
    assert len(cut.char_start) == 5


def test_empty_response_row(student):
    s = Sample(id="e", prompt=({"role": "user", "content": "Say nothing."},), response="", dataset="A")
    row = compute_token_stats(student, [s], progress=False).iloc[0]
    assert row.n_tokens == 0 and len(row.logprob) == 0 and len(row["rank"]) == 0 and not row.truncated


@pytest.mark.parametrize("template", ["chatml", "llama3"])
def test_ifd_question_free_logprobs(template):
    st = tiny_student(template, seed=1)
    samples = make_samples(3)
    df = compute_token_stats(st, samples, TokenStatsSettings(with_ifd=True), progress=False)
    for s, row in zip(samples, df.itertuples()):
        enc = st.encode_response_only(s.response)
        with torch.no_grad():
            logits = st.model(torch.tensor([enc.input_ids])).logits[0].double()
        lsm = logits.log_softmax(-1)
        start = max(enc.response_start, 1)
        ref = [lsm[p - 1, enc.input_ids[p]].item() for p in range(start, enc.response_end)]
        got = row.logprob_noq
        assert len(got) == row.n_tokens  # same tokens as the in-context response here
        if enc.response_start == 0:
            # Nothing precedes the first token when the tokenizer adds no BOS: NaN, not a made-up value.
            assert np.isnan(got[0]) and template == "chatml"
            got = got[1:]
        assert not np.isnan(got).any()
        assert np.abs(got - np.array(ref)).max() < TOL
        # Without the question the response is less predictable on average for no model in
        # particular; only check the two passes differ (the question is really removed).
        assert np.abs(row.logprob[-len(got):] - got).max() > 1e-3


def test_batch_size_does_not_change_results(student):
    samples = make_samples(10)
    a = compute_token_stats(student, samples, TokenStatsSettings(batch_tokens=40), progress=False)
    b = compute_token_stats(student, samples, TokenStatsSettings(batch_tokens=100_000), progress=False)
    assert a.attrs["run"]["forward_passes"] == 10 > b.attrs["run"]["forward_passes"] == 1
    for x, y in zip(a.itertuples(), b.itertuples()):
        assert np.abs(x.logprob - y.logprob).max() < 1e-5
        assert x.rank.tolist() == y.rank.tolist()


class ForwardCounter:
    def __init__(self, module: torch.nn.Module):
        self.calls = 0
        self.h = module.register_forward_hook(self)

    def __call__(self, *a):
        self.calls += 1


def test_cache_reuse_and_shared_samples(tmp_path, student):
    cache = StatsCache(tmp_path)
    a = make_samples(6, "A")
    b = [Sample(id=f"B-{i}", prompt=s.prompt, response=s.response, gold=s.gold, dataset="B") for i, s in enumerate(a[:3])]
    settings = TokenStatsSettings(batch_tokens=64)
    checked_split(student.model)  # the one-time head check, outside the counted calls
    counter = ForwardCounter(student.model.model)
    try:
        first = compute_token_stats(student, a + b, settings, cache=cache, progress=False)
        run = first.attrs["run"]
        assert (run["requested"], run["unique"], run["computed"], run["reused"]) == (9, 6, 6, 0)
        assert counter.calls == run["forward_passes"] >= 2  # one decoder call per batch
        assert first["dataset"].tolist() == ["A"] * 6 + ["B"] * 3
        assert first["sample_id"].tolist()[6:] == ["B-0", "B-1", "B-2"]
        # Shared samples (same content in two datasets) carry identical statistics.
        for i in range(3):
            assert first.iloc[6 + i].logprob.tolist() == first.iloc[i].logprob.tolist()

        counter.calls = 0
        again = compute_token_stats(student, list(reversed(a + b)), settings, cache=StatsCache(tmp_path), progress=False)
        assert counter.calls == 0
        assert again.attrs["run"]["computed"] == 0 and again.attrs["run"]["reused"] == 6
        pd.testing.assert_frame_equal(again.iloc[::-1].reset_index(drop=True), first)

        # New samples: only they are computed.
        more = compute_token_stats(student, a + make_samples(2, "C", offset=50), settings, cache=cache, progress=False)
        assert more.attrs["run"]["computed"] == 2 and more.attrs["run"]["reused"] == 6
    finally:
        counter.h.remove()

    # Other settings or another student never read these shards.
    other = compute_token_stats(student, a, TokenStatsSettings(max_length=512), cache=cache, progress=False)
    assert other.attrs["run"]["computed"] == 6
    other_student = tiny_student("chatml", seed=5)
    assert other_student.fingerprint != student.fingerprint
    assert compute_token_stats(other_student, a, settings, cache=cache, progress=False).attrs["run"]["computed"] == 6


def test_statistics_with_the_question_free_pass_serve_a_request_without_it(tmp_path, student):
    """`dmc stats --ifd` then a score that needs no IFD: the rows are read, not recomputed, and equal a
    fresh computation without the pass; the reverse needs the pass and computes it."""
    cache = StatsCache(tmp_path)
    samples = make_samples(5)
    with_ifd = compute_token_stats(student, samples, TokenStatsSettings(batch_tokens=64, with_ifd=True), cache=cache,
                                   progress=False)
    assert with_ifd["logprob_noq"].notna().all()
    plain_settings = TokenStatsSettings(batch_tokens=64)
    reused = compute_token_stats(student, samples, plain_settings, cache=cache, progress=False)
    assert (reused.attrs["run"]["computed"], reused.attrs["run"]["reused"]) == (0, 5)
    fresh = compute_token_stats(student, samples, plain_settings, progress=False)
    assert reused["logprob_noq"].isna().all()
    pd.testing.assert_frame_equal(reused, fresh)
    # the offline readers (dmc.scoring.cached_tables) see the same rows
    rows, bad = load_cached_tokens(cache, student.fingerprint, plain_settings)
    assert (rows.num_rows, bad) == (5, []) and rows["logprob_noq"].null_count == 5
    # a request for the pass is not served by rows without it
    other = StatsCache(tmp_path / "other")
    compute_token_stats(student, samples, plain_settings, cache=other, progress=False)
    again = compute_token_stats(student, samples, TokenStatsSettings(batch_tokens=64, with_ifd=True), cache=other,
                                progress=False)
    assert again.attrs["run"]["computed"] == 5 and again["logprob_noq"].notna().all()


def test_shards_are_readable_parquet(tmp_path, student):
    cache = StatsCache(tmp_path)
    settings = TokenStatsSettings(batch_tokens=64)
    df = compute_token_stats(student, make_samples(5), settings, cache=cache, progress=False)
    d = cache.directory("tokens", student.fingerprint, settings.settings_hash)
    shards = sorted(d.glob("*.parquet"))
    assert len(shards) == df.attrs["run"]["forward_passes"] >= 2  # one shard per finished batch
    assert sum(pq.read_table(p).num_rows for p in shards) == 5
    assert (d / "settings.json").exists()


def test_corrupt_shard_is_reported_and_ignored(tmp_path, student):
    cache = StatsCache(tmp_path)
    settings = TokenStatsSettings(batch_tokens=64)
    samples = make_samples(5)
    ref = compute_token_stats(student, samples, settings, cache=cache, progress=False)
    d = cache.directory("tokens", student.fingerprint, settings.settings_hash)
    victim = sorted(d.glob("*.parquet"))[0]
    lost = pq.read_table(victim).num_rows
    victim.write_bytes(victim.read_bytes()[:50])  # a truncated file, as a broken disk would leave
    (d / ".tmp-x.parquet-abc").write_bytes(b"partial")  # a write that never finished: not read at all
    again = compute_token_stats(student, samples, settings, cache=cache, progress=False)
    run = again.attrs["run"]
    assert len(run["bad_shards"]) == 1 and victim.name in run["bad_shards"][0]
    assert run["computed"] == lost and run["reused"] == 5 - lost
    for x, y in zip(ref.itertuples(), again.itertuples()):
        assert np.abs(x.logprob - y.logprob).max() < 1e-5
