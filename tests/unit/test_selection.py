"""Static selection policies on hand-built score tables (no model)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from dmc.data.schema import CandidateDataset, Sample
from dmc.selection import round_counts, select, softmax_weights, water_fill, write_selection

SIZES = {"A": 10, "B": 6, "C": 4}


def _pool() -> list[CandidateDataset]:
    out = []
    for d, n in SIZES.items():
        out.append(CandidateDataset(d, [
            Sample(id=f"{d}{i}", prompt=({"role": "user", "content": f"Compute {i} + {len(d)}."},),
                   response=f"{i} + {len(d)} = {i + len(d)}. The answer is {i + len(d)}.", gold=str(i + len(d)),
                   dataset=d)
            for i in range(n)]))
    return out


def _scores(pool, dmc=None, m=None, tokens=None, rsr=None):
    dmc = dmc or {"A": 0.5, "B": 0.3, "C": 0.2}
    ds = pd.DataFrame({"dataset": list(dmc), "dmc": list(dmc.values())})
    if rsr:
        ds["rsr"] = [rsr[d] for d in dmc]
    rows = []
    for cds in pool:
        for i, s in enumerate(cds):
            rows.append({"dataset": cds.name, "sample_id": s.id, "sample_hash": s.hash,
                         "m": m(cds.name, i) if m else 0.1 * i, "m_reason": None,
                         "n_tokens": tokens(cds.name, i) if tokens else 10})
    return ds, pd.DataFrame(rows)


def _counts(sel) -> dict[str, int]:
    return {d: c["samples"] for d, c in sel.manifest["counts"].items()}


def test_top1_all_or_budget_deterministic():
    pool = _pool()
    sc = _scores(pool)
    sel = select(sc, pool, policy="top1")
    assert _counts(sel) == {"A": 10} and sel.manifest["weights"] == {"A": 1.0, "B": 0.0, "C": 0.0}
    a = select(sc, pool, policy="top1", budget=5, seed=3)
    b = select(sc, pool, policy="top1", budget=5, seed=3)
    c = select(sc, pool, policy="top1", budget=5, seed=4)
    assert [s.id for s in a.samples] == [s.id for s in b.samples]
    assert len(a) == 5 and {s.dataset for s in a.samples} == {"A"}
    assert [s.id for s in a.samples] != [s.id for s in c.samples]


def test_direction_from_registry_and_explicit_order():
    pool = _pool()
    sc = _scores(pool, rsr={"A": 3.0, "B": 1.0, "C": 2.0})
    assert _counts(select(sc, pool, policy="top1", metric="rsr")) == {"B": 6}  # RSR: lower is better
    assert _counts(select(sc, pool, policy="top1", metric="rsr", order="desc")) == {"A": 10}


def test_topk_equal_shares_with_overflow():
    pool = _pool()
    sc = _scores(pool)
    assert _counts(select(sc, pool, policy="topk:2", budget=8)) == {"A": 4, "B": 4}
    # B holds only 6: the rest of its share goes to A
    assert _counts(select(sc, pool, policy="topk:2", budget=14)) == {"A": 8, "B": 6}
    with pytest.raises(ValueError, match="K must be a positive integer"):
        select(sc, pool, policy="topk:0")


def test_proportional_and_water_fill():
    pool = _pool()
    assert _counts(select(_scores(pool), pool, policy="proportional", budget=10)) == {"A": 5, "B": 3, "C": 2}
    # C's share (6) exceeds its 4 samples; the other 2 split between A and B by weight (equal)
    sel = select(_scores(pool, dmc={"A": 0.2, "B": 0.2, "C": 0.6}), pool, policy="proportional", budget=10)
    assert _counts(sel) == {"C": 4, "A": 3, "B": 3}
    assert sel.manifest["weights"] == pytest.approx({"C": 0.6, "A": 0.2, "B": 0.2})
    with pytest.raises(ValueError, match="needs a budget"):
        select(_scores(pool), pool, policy="proportional")


def test_softmax_weights_and_temperature():
    pool = _pool()
    sc = _scores(pool)
    sel = select(sc, pool, policy="softmax:0.1", budget=10)
    z = np.exp(np.array([0.5, 0.3, 0.2]) / 0.1)
    w = z / z.sum()
    assert list(sel.manifest["weights"].values()) == pytest.approx(w.tolist())
    assert sum(_counts(sel).values()) == 10
    # shares 8.44, 1.14, 0.42: floors 8, 1, 0; the one left goes to the largest remainder (A)
    assert 10 * w == pytest.approx([8.438, 1.142, 0.420], abs=1e-3)
    assert _counts(sel) == {"A": 9, "B": 1}
    cold = select(sc, pool, policy="softmax:0.001", budget=10)
    assert _counts(cold) == {"A": 10}


def test_nan_dataset_excluded_with_reason():
    pool = _pool()
    sel = select(_scores(pool, dmc={"A": math.nan, "B": 0.3, "C": 0.2}), pool, policy="top1")
    assert _counts(sel) == {"B": 6}
    assert sel.manifest["excluded_datasets"] == {"A": "dmc is NaN"}
    assert sel.manifest["scores"]["A"] is None


def test_token_budget_dataset_policy():
    pool = _pool()
    sc = _scores(pool, tokens=lambda d, i: 10 + i)
    sel = select(sc, pool, policy="top1", budget=45, unit="tokens", seed=0)
    used = sel.manifest["counts"]["A"]["tokens"]
    assert used <= 45 and sel.manifest["n_tokens"] == used
    assert used >= 45 - 10  # first-fit leaves less than one sample's worth unused
    with pytest.raises(ValueError, match="token budget needs per-sample token counts"):
        select(sc[0], pool, policy="top1", budget=45, unit="tokens")


def test_top_fraction_across_and_within():
    pool = _pool()
    # m = 0.1 * index in every dataset: A holds the highest scores
    sc = _scores(pool)
    across = select(sc, pool, policy="samples:top-fraction:0.25")
    assert len(across) == 5  # ceil(0.25 * 20)
    assert [s.id for s in across.samples] == ["A9", "A8", "A7", "A6", "A5"]
    within = select(sc, pool, policy="samples:top-fraction:0.5", within=True)
    assert _counts(within) == {"A": 5, "B": 3, "C": 2}
    assert {s.id for s in within.samples if s.dataset == "C"} == {"C3", "C2"}
    # a budget with within=True takes the same share of each dataset
    capped = select(sc, pool, policy="samples:top-fraction", budget=10, within=True)
    assert _counts(capped) == {"A": 5, "B": 3, "C": 2}
    tok = select(_scores(pool, tokens=lambda d, i: 7), pool, policy="samples:top-fraction", budget=30, unit="tokens")
    assert len(tok) == 4 and tok.manifest["n_tokens"] == 28


def test_top_fraction_skips_nan_samples_and_ties_are_seeded():
    pool = _pool()
    ds, smp = _scores(pool, m=lambda d, i: 1.0)
    smp.loc[smp["sample_id"] == "A0", ["m", "m_reason"]] = [math.nan, "no gold"]
    a = select((ds, smp), pool, policy="samples:top-fraction", budget=5, seed=1)
    b = select((ds, smp), pool, policy="samples:top-fraction", budget=5, seed=1)
    c = select((ds, smp), pool, policy="samples:top-fraction", budget=5, seed=2)
    assert [s.id for s in a.samples] == [s.id for s in b.samples] != [s.id for s in c.samples]
    assert a.manifest["excluded_samples"] == {"no gold": 1}
    assert "A0" not in {s.id for s in select((ds, smp), pool, policy="samples:top-fraction:1.0").samples}


def test_stale_scores_rejected():
    pool = _pool()
    ds, smp = _scores(pool)
    smp.loc[0, "sample_hash"] = "0" * 16
    with pytest.raises(ValueError, match="content changed since it was scored"):
        select((ds, smp), pool, policy="top1")
    # a pool without the stale dataset: A is not selectable, the rest is
    sel = select((ds, smp), pool[1:], policy="top1")
    assert _counts(sel) == {"B": 6} and sel.manifest["excluded_datasets"] == {"A": "not in the pool"}


def test_allocation_helpers():
    assert water_fill({"a": 0.5, "b": 0.5}, {"a": 2, "b": 100}, 10) == pytest.approx({"a": 2, "b": 8})
    assert water_fill({"a": 1.0, "b": 0.0}, {"a": 3, "b": 5}, 10) == {"a": 3.0, "b": 0.0}
    assert round_counts({"a": 3.4, "b": 3.3, "c": 3.3}, {"a": 9, "b": 9, "c": 9}, 10) == {"a": 4, "b": 3, "c": 3}
    assert softmax_weights({"a": 1.0, "b": math.nan}, 0.1) == {"a": 1.0}


def test_write_selection_jsonl_and_manifest(tmp_path):
    pool = _pool()
    sel = select(_scores(pool), pool, policy="proportional", budget=10)
    out, man = write_selection(sel, tmp_path / "train.jsonl")
    assert man.name == "train.manifest.json"
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 10
    assert rows[0]["messages"][0]["role"] == "user" and rows[0]["messages"][-1]["role"] == "assistant"
    last = rows[0]["messages"][-1]["content"]
    assert last.endswith("The answer is " + last.split()[-1])
    assert {r["source"] for r in rows} == {"A", "B", "C"}
    doc = json.loads(man.read_text())
    assert doc["policy"] == "proportional" and doc["n_selected"] == 10
    assert doc["counts"]["A"]["samples"] == 5 and doc["output"] == str(out)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_trl_sft_trainer_reads_the_jsonl(tmp_path):
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    from dmc.students.tiny import tiny_student

    pool = _pool()
    out, _ = write_selection(select(_scores(pool), pool, policy="proportional", budget=8), tmp_path / "t.jsonl")
    ds = load_dataset("json", data_files=str(out), split="train")
    st = tiny_student("chatml", hidden=32, layers=2)
    args = SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=1, per_device_train_batch_size=4, report_to=[],
                     save_strategy="no", use_cpu=True)
    trainer = SFTTrainer(model=st.model, args=args, train_dataset=ds, processing_class=st.tokenizer)
    assert len(trainer.train_dataset) == 8
    result = trainer.train()
    assert result.global_step == 1 and math.isfinite(result.training_loss)
