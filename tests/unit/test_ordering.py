"""The one seeded ordering (dmc.stats.subsample): pinned, so `dmc score` keeps drawing the same samples."""

from __future__ import annotations

import hashlib
import random

import pandas as pd
import pytest

from dmc.data.schema import CandidateDataset, Sample
from dmc.scoring import subsample as score_subsample
from dmc.selection import select
from dmc.stats.subsample import seeded_order, seeded_rank, subsample


def _pool() -> list[Sample]:
    """12 samples over 9 questions: questions 0, 1 and 2 have two traces each (s0/s9, s1/s10, s2/s11)."""
    out = []
    for i in range(12):
        q = i % 9
        out.append(Sample(id=f"s{i}", prompt=({"role": "user", "content": f"What is {q} * 7?"},),
                          response=f"{q} * 7 = {7 * q}. The answer is {7 * q}." + (" Checked." if i >= 9 else ""),
                          gold=str(7 * q)))
    return out


# Computed with the implementation before the orderings were unified (sha256 hexdigest of
# f"{seed}|{question_hash}", then sample hash): these must never change.
PINNED = {
    (0, 1): ["s5"],
    (0, 3): ["s3", "s5", "s9"],
    (0, 5): ["s0", "s3", "s5", "s6", "s9"],
    (0, 8): ["s0", "s3", "s4", "s5", "s6", "s8", "s9", "s10"],
    (0, 11): ["s0", "s1", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11"],
    (1, 1): ["s10"],
    (1, 3): ["s1", "s6", "s10"],
    (1, 5): ["s1", "s3", "s4", "s6", "s10"],
    (1, 8): ["s1", "s2", "s3", "s4", "s6", "s7", "s10", "s11"],
    (1, 11): ["s0", "s1", "s2", "s3", "s4", "s6", "s7", "s8", "s9", "s10", "s11"],
    (7, 1): ["s10"],
    (7, 3): ["s1", "s9", "s10"],
    (7, 5): ["s0", "s1", "s7", "s9", "s10"],
    (7, 8): ["s0", "s1", "s3", "s4", "s7", "s8", "s9", "s10"],
    (7, 11): ["s0", "s1", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11"],
    (12345, 1): ["s9"],
    (12345, 3): ["s0", "s8", "s9"],
    (12345, 5): ["s0", "s6", "s8", "s9", "s11"],
    (12345, 8): ["s0", "s2", "s3", "s6", "s7", "s8", "s9", "s11"],
    (12345, 11): ["s0", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11"],
}


@pytest.mark.parametrize("seed,n", sorted(PINNED))
def test_subsample_draws_are_pinned(seed, n):
    assert [s.id for s in subsample(_pool(), n, seed)] == PINNED[(seed, n)]


def test_dmc_score_subsample_is_pinned():
    ds = CandidateDataset("d", _pool())
    assert [s.id for s in score_subsample(ds, 4, 2).samples] == ["s1", "s4", "s5", "s10"]
    assert [s.id for s in subsample(list(reversed(_pool())), 5, 3)] == ["s10", "s9", "s7", "s3", "s0"]


def test_subsample_ignores_file_order_and_keeps_it():
    pool = _pool()
    shuffled = pool[:]
    random.Random(0).shuffle(shuffled)
    for seed in (0, 1, 7):
        a, b = subsample(pool, 5, seed), subsample(shuffled, 5, seed)
        assert {s.id for s in a} == {s.id for s in b}
        assert [s.id for s in b] == [s.id for s in shuffled if s.id in {x.id for x in b}]  # original order
    assert subsample(pool, None) == pool and subsample(pool, 50) == pool
    with pytest.raises(ValueError, match=">= 0"):
        subsample(pool, -1)


def test_seeded_rank_is_sha256_of_seed_and_key():
    assert seeded_rank("abc", 0) == int("0123a03a4e7d658dd04d63a26ec118e8c2682a2e3f91c563c954b869e2d1ad75", 16)
    assert seeded_rank("q", 42) == int(hashlib.sha256(b"42|q").hexdigest(), 16)
    assert seeded_rank("q", 1) != seeded_rank("q", 2)


def test_seeded_order_ties_and_tiebreak():
    items = ["a", "b", "c", "d", "e"]
    assert seeded_order(items, str, 0) == sorted(items, key=lambda x: seeded_rank(x, 0))
    assert seeded_order(items, str, 0) != seeded_order(items, str, 1)
    # equal keys: by tiebreak when given, else by position
    pairs = [("k", 2), ("k", 1), ("j", 0)]
    assert [p for p in seeded_order(pairs, lambda p: p[0], 5) if p[0] == "k"] == [("k", 2), ("k", 1)]
    assert [p for p in seeded_order(pairs, lambda p: p[0], 5, tiebreak=lambda p: p[1]) if p[0] == "k"] == [
        ("k", 1), ("k", 2)]


def test_selection_draws_use_the_seeded_order():
    pool = _pool()
    ds = CandidateDataset("d", pool)
    sc = pd.DataFrame({"dataset": ["d"], "dmc": [0.5]})
    sel = select(sc, [ds], policy="top1", budget=5, seed=0)
    expected = seeded_order(pool, lambda s: f"d|{s.hash}", 0)[:5]
    assert [s.id for s in sel.samples] == [s.id for s in expected] == ["s9", "s3", "s8", "s10", "s0"]
    assert [s.id for s in select(sc, [ds], policy="top1", budget=5, seed=1).samples] == ["s1", "s5", "s10", "s0", "s7"]
    # the draw depends on the samples, not on the file order
    shuffled = pool[:]
    random.Random(1).shuffle(shuffled)
    again = select(sc, [CandidateDataset("d", shuffled)], policy="top1", budget=5, seed=0)
    assert [s.id for s in again.samples] == [s.id for s in sel.samples]


def test_selection_ties_ignore_table_order():
    pool = _pool()
    ds = CandidateDataset("d", pool)
    sc = pd.DataFrame({"dataset": ["d"], "dmc": [0.5]})
    rows = pd.DataFrame({"dataset": "d", "sample_id": [s.id for s in pool], "sample_hash": [s.hash for s in pool],
                         "m": 1.0, "m_reason": None, "n_tokens": 10})
    a = select((sc, rows), [ds], policy="samples:top-fraction", budget=4, seed=3)
    b = select((sc, rows.iloc[::-1].reset_index(drop=True)), [ds], policy="samples:top-fraction", budget=4, seed=3)
    assert [s.id for s in a.samples] == [s.id for s in b.samples]
    keys = {s.id: f"d|{s.hash}" for s in pool}
    assert [s.id for s in a.samples] == seeded_order([s.id for s in pool], keys.__getitem__, 3)[:4]
