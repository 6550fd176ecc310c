"""StatsCache: atomic Parquet shards, de-duplication, and tolerance of bad shards."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dmc.stats import AttemptSettings, StatsCache, TokenStatsSettings
from dmc.stats.cache import atomic_write_parquet
from dmc.stats.tables import ATTEMPTS_SCHEMA, rows_to_table


def attempt_rows(qs, text="t"):
    return rows_to_table([{"question_hash": q, "attempt": a, "text": f"{text}{q}{a}", "answer": None, "grade": "wrong",
                           "reason": "no answer extracted", "mean_surprisal": 1.5, "n_tokens": 3, "truncated": False}
                          for q in qs for a in range(2)], ATTEMPTS_SCHEMA)


def test_roundtrip_and_dedup(tmp_path):
    c = StatsCache(tmp_path)
    c.write_shard("attempts", "fp", "sh", attempt_rows(["a", "b"]))
    c.write_shard("attempts", "fp", "sh", attempt_rows(["b", "c"], text="u"))
    t, rep = c.load("attempts", "fp", "sh")
    assert rep.shards == 2 and rep.duplicates == 2 and rep.rows == 6 and rep.bad_shards == []
    keys = sorted(zip(t["question_hash"].to_pylist(), t["attempt"].to_pylist()))
    assert keys == [(q, a) for q in "abc" for a in range(2)]
    assert t.schema.equals(ATTEMPTS_SCHEMA)
    # Other fingerprints or settings see nothing.
    assert c.load("attempts", "fp2", "sh")[0].num_rows == 0
    assert c.load("attempts", "fp", "other")[0].num_rows == 0


def test_write_refuses_wrong_schema(tmp_path):
    with pytest.raises(ValueError, match="schema"):
        StatsCache(tmp_path).write_shard("attempts", "fp", "sh", pa.table({"question_hash": ["a"]}))
    with pytest.raises(ValueError, match="unknown table"):
        StatsCache(tmp_path).directory("nope", "fp", "sh")


def test_bad_and_foreign_shards_are_reported_not_fatal(tmp_path):
    c = StatsCache(tmp_path)
    good = c.write_shard("attempts", "fp", "sh", attempt_rows(["a"]))
    d = good.parent
    (d / "junk.parquet").write_bytes(b"PAR1 not really")
    pq.write_table(pa.table({"x": [1, 2]}), d / "foreign.parquet")
    (d / ".tmp-half.parquet-1").write_bytes(b"half")
    t, rep = c.load("attempts", "fp", "sh")
    assert t.num_rows == 2 and rep.shards == 1
    assert len(rep.bad_shards) == 2
    assert any("junk.parquet" in b for b in rep.bad_shards) and any("foreign.parquet" in b for b in rep.bad_shards)


def test_unsafe_fingerprints_stay_inside_root(tmp_path):
    c = StatsCache(tmp_path)
    d = c.directory("tokens", "../../etc", "a/b")
    assert d.resolve().is_relative_to(tmp_path.resolve()) and len(d.relative_to(tmp_path).parts) == 3


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_parquet(attempt_rows(["a"]), tmp_path / "x.parquet")
    assert os.listdir(tmp_path) == ["x.parquet"]
    assert pq.read_table(tmp_path / "x.parquet").num_rows == 2


def test_settings_hash_keys_only_results():
    base = TokenStatsSettings()
    assert TokenStatsSettings(batch_tokens=17, chunk_elements=1000).settings_hash == base.settings_hash
    assert TokenStatsSettings(max_length=512).settings_hash != base.settings_hash
    assert TokenStatsSettings(with_ifd=True).settings_hash != base.settings_hash
    assert AttemptSettings(temperature=0).settings_hash == AttemptSettings(temperature=0.0).settings_hash
    assert AttemptSettings(verifier="math").settings_hash != AttemptSettings().settings_hash
    with pytest.raises(ValueError, match="max_length"):
        TokenStatsSettings(max_length=1)
