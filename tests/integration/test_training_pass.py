"""Token statistics read from the training forward pass (dmc.curriculum.observe): the same rows the
statistics engine computes, used by the dynamic curriculum's re-scores, and kept across a resume."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
import torch

from dmc.curriculum import DMCCurriculumCallback, DMCRescorer
from dmc.curriculum.callback import OBSERVED_FILE, STATE_FILE
from dmc.curriculum.observe import TrainingPassStats
from dmc.data.schema import CandidateDataset, EvalItem, Sample
from dmc.stats import TokenStatsSettings, compute_token_stats
from dmc.stats.tables import TOKENS_CACHE_SCHEMA
from dmc.training import StopAtStep, TrainConfig, train
from dmc.training.collator import SFTCollator


def _dataset(name: str, n: int, verbose: bool, offset: int = 0) -> CandidateDataset:
    out = []
    for i in range(n):
        a, b = i + offset, 2 * i + 3
        r = f"{a} + {b} = {a + b}. The answer is {a + b}." if verbose else f"The answer is {a + b}."
        out.append(Sample(id=f"{name}{i}", prompt=({"role": "user", "content": f"What is {a} + {b}?"},), response=r,
                          gold=str(a + b), dataset=name))
    return CandidateDataset(name, out)


@pytest.fixture
def pool():
    return [_dataset("step", 16, True), _dataset("terse", 12, False), _dataset("mixed", 8, True, offset=40)]


def test_training_pass_rows_equal_the_engine_statistics(tiny_student_factory, pool):
    st = tiny_student_factory("chatml")
    samples = pool[0].samples[:5] + pool[1].samples[:3]  # different lengths: a padded batch
    collator = SFTCollator(st, 256)
    obs = TrainingPassStats(collator.lookup)
    obs.attach(st.model)
    st.model.train()
    batch = collator(samples)
    out = st.model(**batch)
    out.loss.backward()  # an ordinary training step's forward
    st.model(**batch)  # the same rows again: trained on before, so not held-out, not read
    with torch.no_grad():
        st.model.eval()
        st.model(**batch)  # not a training pass: ignored
    obs.detach()
    st.model(**collator(pool[2].samples[:2]))  # after detach: ignored
    seen = obs.take()
    assert {d: seen.count(d) for d in ("step", "terse", "mixed")} == {"step": 5, "terse": 3, "mixed": 0}
    ref = compute_token_stats(st, samples, TokenStatsSettings(), progress=False).set_index("sample_hash")
    got = seen.table().to_pandas().set_index("sample_hash")
    assert sorted(got.index) == sorted(ref.index)
    for h in ref.index:
        for col in ("token_ids", "rank", "char_start", "char_end"):
            assert np.array_equal(got.loc[h, col], ref.loc[h, col]), col
        assert np.allclose(got.loc[h, "logprob"], ref.loc[h, "logprob"], atol=1e-4)
        assert np.allclose(got.loc[h, "entropy"], ref.loc[h, "entropy"], atol=1e-4)
    assert obs.take().count("step") == 0  # take() starts afresh


def _fake_known(ref, n: int) -> pa.Table:
    """The first `n` rows of a tokens table as known rows, every logprob set to -7 (which no
    computation gives), so a test can tell given rows from recomputed ones."""
    fake = ref.iloc[:n].drop(columns=["dataset", "sample_id"]).copy()
    fake["logprob"] = [np.full(len(x), -7.0, np.float32) for x in fake["logprob"]]
    return pa.Table.from_pandas(fake, preserve_index=False).select(TOKENS_CACHE_SCHEMA.names)


def test_known_rows_are_used_instead_of_computed(tiny_student_factory, pool):
    st = tiny_student_factory("chatml")
    samples = pool[0].samples[:4]
    ref = compute_token_stats(st, samples, TokenStatsSettings(), progress=False)
    table = _fake_known(ref, 2)
    out = compute_token_stats(st, samples, TokenStatsSettings(), progress=False, known=table)
    assert out.attrs["run"]["reused"] == 2 and out.attrs["run"]["computed"] == 2
    assert all((x == -7.0).all() for x in out["logprob"][:2])  # the given rows, not recomputed
    assert np.allclose(out["logprob"][3], ref["logprob"][3])


def _targets():
    return [EvalItem(id=f"e{i}", prompt=({"role": "user", "content": f"What is {i} + {2 * i + 3}?"},),
                     gold=str(3 * i + 3)) for i in range(4)]


def _curriculum(pool, st, policy="argmax", rescore_every=3, **kw):
    rescorer = DMCRescorer(_targets(), capability_size=2, target_size=None, attempt_budget=8)
    return DMCCurriculumCallback(pool, rescore_every=rescore_every, probe_size=4, policy=policy, rescore_fn=rescorer, seed=1,
                                 student=st, initial_scores={"step": 0.9, "terse": 0.1, "mixed": 0.2}, **kw)


def test_rescore_reads_the_trained_dataset_from_its_first_training_passes(tmp_path, tiny_student_factory, pool):
    st = tiny_student_factory("chatml")
    cur = _curriculum(pool, st, policy="argmax:100")  # stays on "step" throughout
    train(st, None, TrainConfig(output_dir=str(tmp_path / "r"), steps=7, batch_size=4, bf16=False), callbacks=[cur])
    probe = {s.hash for s in cur.probes["step"]}
    trained = {s.hash for s, lab in zip(cur.dataset.samples, cur.dataset.labels) if lab == 0} - probe
    assert len(trained) == 12  # the probe (4 of 16 rows) is held out of training
    e3, e6 = cur.history[1], cur.history[2]
    assert (e3["step"], e6["step"]) == (3, 6)
    # steps 1-3 draw 12 rows of "step": one epoch of the 12 trainable rows, each a first pass; the 4
    # read in the last half interval (step 3; the older ones measured an older student) join the
    # probe, whose held-out questions give C_D (so the dataset is scored, not NaN)
    assert e3["details"]["step"]["source"] == "probe + training pass" and e3["details"]["step"]["n_scored"] == 8
    assert e3["scores"]["step"] is not None and e3["details"]["step"]["C_D"] is not None
    assert e3["details"]["terse"]["source"] == "probe" and e3["details"]["terse"]["n_scored"] == 4
    assert e3["timing"]["n_training_pass"] == 4
    # steps 4-6 are the second epoch: trained on before, so the probe scores "step" again
    assert e6["details"]["step"]["source"] == "probe" and e6["timing"]["n_training_pass"] == 0
    assert cur.observer is not None and cur.observer.seen == trained  # all 12 count as trained on
    # without the training pass, every dataset is scored on its probe
    st2 = tiny_student_factory("chatml")
    off = _curriculum(pool, st2, train_pass=False)
    train(st2, None, TrainConfig(output_dir=str(tmp_path / "p"), steps=4, batch_size=4, bf16=False), callbacks=[off])
    assert off.history[1]["details"]["step"]["source"] == "probe" and off.history[1]["timing"]["n_training_pass"] == 0


def _run(tmp_path, name, tiny_student_factory, pool, *, stop=None, resume=False):
    st = tiny_student_factory("chatml")
    cur = _curriculum(pool, st, rescore_every=4)
    cfg = TrainConfig(output_dir=str(tmp_path / name), steps=10, batch_size=3, save_every=7, bf16=False,
                      learning_rate=1e-2)
    train(st, None, cfg, callbacks=[cur] + ([StopAtStep(stop)] if stop else []), resume_from_checkpoint=resume or None)
    return cur


def test_resume_rescores_from_the_same_training_rows(tmp_path, tiny_student_factory):
    # 36 trainable rows of "step", 3 per step, all first passes; re-scores at 4 and 8 read the rows of
    # the last half interval (steps 3-4, 7-8), so the one at 8 needs step 7's rows from the checkpoint
    pool = [_dataset("step", 40, True), _dataset("terse", 12, False), _dataset("mixed", 8, True, offset=40)]
    full = _run(tmp_path, "full", tiny_student_factory, pool)
    _run(tmp_path, "split", tiny_student_factory, pool, stop=7)
    saved = tmp_path / "split" / "checkpoints" / "checkpoint-7" / OBSERVED_FILE
    assert saved.is_file()
    state = json.loads((saved.parent / STATE_FILE).read_text())
    assert len(state["trained_rows"]) == 21  # 7 steps x 3 rows trained on, each once
    resumed = _run(tmp_path, "split", tiny_student_factory, pool, resume=True)
    key = [(e["step"], e["scores"], e.get("noise"), e.get("details")) for e in full.history]
    assert [(e["step"], e["scores"], e.get("noise"), e.get("details")) for e in resumed.history] == key
    assert [e["step"] for e in full.history] == [0, 4, 8]
    assert full.history[2]["details"]["step"]["source"] == "probe + training pass"
    assert full.history[2]["timing"]["n_training_pass"] == 6  # steps 7 (from the checkpoint) and 8
    assert all(e["scores"]["step"] is not None for e in full.history)
    json.dumps(full.history)  # the log stays JSON
    _run(tmp_path, "split2", tiny_student_factory, pool, stop=7)
    (tmp_path / "split2" / "checkpoints" / "checkpoint-7" / OBSERVED_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="training pass"):
        _run(tmp_path, "split2", tiny_student_factory, pool, resume=True)



class _Killed(Exception):
    pass


def test_a_kill_while_saving_leaves_a_checkpoint_that_resuming_skips(tmp_path, tiny_student_factory, pool,
                                                                      monkeypatch):
    # the training pass's rows are written before the curriculum state, which marks a checkpoint
    # complete: a run stopped between the two resumes from the checkpoint before
    import dmc.curriculum.callback as callback
    from dmc.training.sft import latest_complete_checkpoint

    write = callback.atomic_write_json

    def kill_at_6(path, data):
        if path.parent.name == "checkpoint-6":
            raise _Killed
        write(path, data)

    monkeypatch.setattr(callback, "atomic_write_json", kill_at_6)
    st = tiny_student_factory("chatml")
    cfg = TrainConfig(output_dir=str(tmp_path / "run"), steps=10, batch_size=3, save_every=3, bf16=False,
                      learning_rate=1e-2)
    with pytest.raises(_Killed):
        train(st, None, cfg, callbacks=[_curriculum(pool, st, rescore_every=4)])
    six = tmp_path / "run" / "checkpoints" / "checkpoint-6"
    assert (six / OBSERVED_FILE).is_file() and not (six / STATE_FILE).exists()
    path, skipped = latest_complete_checkpoint(six.parent, curriculum=True)
    assert path == str(six.parent / "checkpoint-3") and len(skipped) == 1 and "checkpoint-6" in skipped[0]

def test_observed_merge_keeps_the_earliest_pass_and_survives_parquet(tmp_path, tiny_student_factory, pool):
    st = tiny_student_factory("chatml")
    collator = SFTCollator(st, 256)
    first, second = TrainingPassStats(collator.lookup), TrainingPassStats(collator.lookup)
    st.model.train()
    batch = collator(pool[0].samples[:3])
    for obs, step in ((first, 5), (second, 2)):  # the same rows, read at two steps (two ranks)
        obs.step = step
        obs.attach(st.model)
        st.model(**batch)
        obs.detach()
    a, b = first.take(), second.take()
    a.merge(b)
    assert set(a.steps.values()) == {2}  # every row from the earlier pass
    a.write(tmp_path / "o.parquet")
    back = type(a).read(tmp_path / "o.parquet", {("step", s.hash): s for s in pool[0].samples})
    assert back.steps == a.steps and back.lengths == a.lengths and back.count("step") == 3
    assert back.table().equals(a.table())
    with pytest.raises(ValueError, match="not in this run's pool"):
        type(a).read(tmp_path / "o.parquet", {})


def test_rescore_tables_take_the_known_rows_as_given(tiny_student_factory, pool):
    from dmc.curriculum.rescore import rescore_settings, rescore_tables
    from dmc.scoring import ScoringSettings

    st = tiny_student_factory("chatml")
    samples = pool[0].samples[:4]
    ref = compute_token_stats(st, samples, TokenStatsSettings(), progress=False)
    known = _fake_known(ref, 2)
    settings = rescore_settings(ScoringSettings(), "cpu")
    t = rescore_tables(st, samples, samples[:1], settings, known)
    got = t.tokens.set_index("sample_hash")
    assert all((got.loc[h, "logprob"] == -7.0).all() for h in known["sample_hash"].to_pylist())  # not recomputed
    assert np.allclose(got.loc[samples[3].hash, "logprob"], ref["logprob"][3], atol=1e-4)
