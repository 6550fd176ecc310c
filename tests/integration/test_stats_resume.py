"""A run killed with SIGKILL mid-way resumes from its shards; the final table equals an
uninterrupted run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from dmc.data.schema import Sample
from dmc.stats import StatsCache, TokenStatsSettings, compute_token_stats
from dmc.students.tiny import tiny_student


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread, and the CPU is shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


N_SAMPLES = 60
SETTINGS = dict(batch_tokens=48, with_ifd=True)  # about one sample per batch: many shards

def samples(n: int) -> list[Sample]:
    return [Sample(id=str(i), prompt=({"role": "user", "content": f"Add {i} and {2 * i + 1}."},),
                   response=f"{i} + {2 * i + 1} = {3 * i + 1}." + " Check." * (i % 5), gold=str(3 * i + 1),
                   dataset="D") for i in range(n)]


WORKLOAD = textwrap.dedent('''
    import sys, time
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[4])
    from test_stats_resume import samples
    from dmc.stats import StatsCache, TokenStatsSettings, compute_token_stats
    from dmc.students.tiny import tiny_student

    student = tiny_student("chatml", seed=3)
    decoder = student.model.model
    slow = decoder.forward
    def forward(*a, **k):  # slow each batch down so the parent can kill the run mid-way
        time.sleep(0.1)
        return slow(*a, **k)
    decoder.forward = forward
    compute_token_stats(student, samples(int(sys.argv[2])), TokenStatsSettings(**eval(sys.argv[3])),
                        cache=StatsCache(sys.argv[1]), progress=False)
    print("finished")
''')


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path):
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    cache_dir = tmp_path / "cache"
    student = tiny_student("chatml", seed=3)
    settings = TokenStatsSettings(**SETTINGS)
    shard_dir = StatsCache(cache_dir).directory("tokens", student.fingerprint, settings.settings_hash)

    proc = subprocess.Popen([sys.executable, str(script), str(cache_dir), str(N_SAMPLES), repr(SETTINGS),
                             os.path.dirname(__file__)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        t0 = time.time()
        deadline = t0 + 120
        while time.time() < deadline and proc.poll() is None:
            if len(list(shard_dir.glob("*.parquet"))) >= 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"workload ended before it could be killed: {proc.communicate()}"
        print(f"killing after {time.time() - t0:.1f}s")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert b"finished" not in proc.stdout.read()

    done_rows = sum(pq.read_table(p).num_rows for p in shard_dir.glob("*.parquet"))
    assert 3 <= done_rows < N_SAMPLES  # killed mid-run, with finished work on disk

    work = samples(N_SAMPLES)
    resumed = compute_token_stats(student, work, settings, cache=StatsCache(cache_dir), progress=False)
    run = resumed.attrs["run"]
    assert run["bad_shards"] == []
    assert run["reused"] == done_rows and run["computed"] == N_SAMPLES - done_rows

    print(f"resumed after {time.time() - t0:.1f}s")
    reference = compute_token_stats(student, work, settings, cache=None, progress=False)
    assert resumed["sample_hash"].tolist() == reference["sample_hash"].tolist()
    for col in ("sample_id", "dataset", "question_hash", "n_tokens", "truncated"):
        assert resumed[col].tolist() == reference[col].tolist()
    for a, b in zip(resumed.itertuples(), reference.itertuples()):
        assert a.token_ids.tolist() == b.token_ids.tolist() and a.rank.tolist() == b.rank.tolist()
        assert a.char_start.tolist() == b.char_start.tolist() and a.char_end.tolist() == b.char_end.tolist()
        np.testing.assert_allclose(a.logprob, b.logprob, atol=1e-5, rtol=0)
        np.testing.assert_allclose(a.entropy, b.entropy, atol=1e-5, rtol=0)
        np.testing.assert_allclose(a.logprob_noq, b.logprob_noq, atol=1e-5, rtol=0)  # NaN == NaN here

    # A third run finds everything done.
    again = compute_token_stats(student, work, settings, cache=StatsCache(cache_dir), progress=False)
    assert again.attrs["run"]["computed"] == 0 and again.attrs["run"]["forward_passes"] == 0
