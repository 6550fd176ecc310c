"""The Ray backend (dmc.stats.backend, dmc.validation.pilots): the same tables and the same pilot
results as the local backend, through the same caches. Each test starts and stops its own local
2-CPU cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dmc.data.schema import Sample
from dmc.stats import AttemptSettings, BackendSettings, StatsCache, TokenStatsSettings
from dmc.stats.backend import init_ray
from dmc.scoring import ScoringSettings, compute_tables
from dmc.students import load_student
from dmc.validation.pilots import Pilot, run_pilots

ray = pytest.importorskip("ray")

TOL = 1e-5
RAY2 = BackendSettings(backend="ray", num_workers=2, worker_cpus=1)


@pytest.fixture
def cluster():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def samples(n: int = 10) -> list[Sample]:
    out = []
    for i in range(n):
        a, b = 13 * i + 2, 3 * i + 5
        steps = " ".join(f"{a} + {j} = {a + j}." for j in range(2 * (i % 4)))
        out.append(Sample(id=str(i), prompt=({"role": "user", "content": f"What is {a} + {b}?"},),
                          response=f"{steps} So {a} + {b} = {a + b}.".strip(), gold=str(a + b), dataset="d"))
    return out


SETTINGS = ScoringSettings(tokens=TokenStatsSettings(batch_tokens=256),
                           attempts=AttemptSettings(k=2, temperature=0.8, max_new_tokens=12, batch_size=4, seed=3))


def test_ray_tables_equal_local_and_share_the_cache(cluster, tmp_path: Path):
    st = load_student("lab-small")
    ss = samples()
    needs = {"tokens", "attempts"}
    local = compute_tables(st, ss, SETTINGS, needs=needs, cache=StatsCache(tmp_path / "local"))
    remote = compute_tables(st, ss, SETTINGS, needs=needs, cache=StatsCache(tmp_path / "ray"), backend=RAY2)
    assert remote.run["tokens"]["computed"] == len(ss) and remote.run["tokens"]["forward_passes"] > 1
    lt, rt = local.tokens, remote.tokens
    assert lt["sample_hash"].tolist() == rt["sample_hash"].tolist()
    for (_, a), (_, b) in zip(lt.iterrows(), rt.iterrows()):
        assert np.array_equal(a.token_ids, b.token_ids) and np.array_equal(a["rank"], b["rank"])
        assert np.abs(a.logprob - b.logprob).max() <= TOL and np.abs(a.entropy - b.entropy).max() <= TOL
    cols = ["question_hash", "attempt", "text", "answer", "grade", "n_tokens", "truncated"]
    assert local.attempts[cols].equals(remote.attempts[cols])  # same seeds, same attempts
    assert np.allclose(local.attempts["mean_surprisal"], remote.attempts["mean_surprisal"], atol=TOL)

    # The shards the Ray run wrote are the local backend's: a local run on that cache reuses all.
    again = compute_tables(st, ss, SETTINGS, needs=needs, cache=StatsCache(tmp_path / "ray"))
    assert again.run["tokens"]["computed"] == 0 and again.run["tokens"]["reused"] == len(ss)
    assert again.run["attempts"]["computed"] == 0
    # ... and a Ray run resumes a partial local one: only the missing samples are computed.
    part = StatsCache(tmp_path / "part")
    compute_tables(st, ss[:4], SETTINGS, needs={"tokens"}, cache=part)
    rest = compute_tables(st, ss, SETTINGS, needs={"tokens"}, cache=part, backend=RAY2)
    assert rest.run["tokens"]["reused"] == 4 and rest.run["tokens"]["computed"] == len(ss) - 4
    assert rest.tokens["sample_hash"].tolist() == lt["sample_hash"].tolist()


def tiny_pilot(payload: dict, run_dir: Path) -> dict:
    """A pilot that does no training: its accuracy is a function of its payload."""
    (run_dir / "ran").write_text("1")
    return {"accuracy": (payload["x"] % 7) / 7, "x2": payload["x"] * 2}


def test_ray_pilots_equal_local_and_reuse_the_cache(cluster, tmp_path: Path):
    pilots = [Pilot(f"p{x}", {"x": x}, {"x": x}, {"seed": x}) for x in range(5)]
    local = run_pilots(pilots, tiny_pilot, tmp_path / "local", workers=1, progress=False)
    cache = tmp_path / "ray"
    first = run_pilots(pilots[:2], tiny_pilot, cache, progress=False, backend=RAY2)  # an interrupted run
    assert [r["status"] for r in first] == ["done", "done"]
    for p in pilots[:2]:
        (cache / p.key / "ran").unlink()
    res = run_pilots(pilots, tiny_pilot, cache, progress=False, backend=RAY2)
    assert [r["status"] for r in res] == ["cached"] * 2 + ["done"] * 3
    assert not any((cache / p.key / "ran").exists() for p in pilots[:2])  # finished pilots are not rerun
    keep = ("key", "accuracy", "x2", "seed")
    assert [{k: r[k] for k in keep} for r in res] == [{k: r[k] for k in keep} for r in local]


def test_ray_is_imported_only_when_chosen():
    code = ("import sys\nfrom dmc.cli import app\nimport dmc.cli.score, dmc.cli.stats, dmc.cli.validate\n"
            "import dmc.scoring, dmc.validation\nprint('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("False")


def test_ray_backend_without_ray_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the ray extra looks like
    with pytest.raises(ValueError, match=r"--backend ray needs Ray: pip install 'dmc\[ray\]'"):
        init_ray(BackendSettings(backend="ray"))

