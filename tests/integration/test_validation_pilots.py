import io
import json
import math
import os
from pathlib import Path

import pytest
from rich.console import Console

from dmc.validation.pilots import RESULT_FILE, Pilot, PilotCache, default_workers, run_pilots
from dmc.validation.progress import PilotBoard


def fake_runner(payload: dict, run_dir: Path) -> dict:
    """Module-level (importable by spawn workers): records each call, fails on request."""
    calls = Path(payload["calls"])
    calls.mkdir(parents=True, exist_ok=True)
    (calls / f"{payload['name']}.{os.getpid()}.{len(list(calls.iterdir()))}").write_text("x")
    if payload.get("exit"):
        os._exit(3)  # a worker killed mid-pilot (OOM killer, kill -9)
    if payload.get("fail"):
        raise RuntimeError(f"boom in {payload['name']}")
    out = {"accuracy": payload["acc"], "pid": os.getpid()}
    if payload.get("threads"):
        import torch

        out["threads"] = torch.get_num_threads()
    return out


def _pilots(tmp: Path, accs: dict[str, float], fail: set[str] = frozenset(), exit: set[str] = frozenset(),
            threads: bool = False) -> list[Pilot]:
    return [
        Pilot(label=f"{n} · seed 0", identity={"dataset": n, "seed": 0},
              payload={"name": n, "acc": a, "calls": str(tmp / "calls"), "fail": n in fail, "exit": n in exit,
                       "threads": threads},
              info={"dataset": n, "seed": 0})
        for n, a in accs.items()
    ]


def _calls(tmp: Path) -> list[str]:
    d = tmp / "calls"
    return sorted(p.name.split(".")[0] for p in d.iterdir()) if d.exists() else []


def test_cache_skips_finished_and_retries_failed(tmp_path):
    accs = {"a": 0.25, "b": 0.5, "c": 0.75}
    cache = tmp_path / "pilots"
    first = run_pilots(_pilots(tmp_path, accs, fail={"b"}), fake_runner, cache, workers=1, progress=False)
    assert [r["status"] for r in first] == ["done", "failed", "done"]
    assert first[0]["accuracy"] == 0.25 and first[2]["accuracy"] == 0.75
    assert math.isnan(first[1]["accuracy"]) and "boom in b" in first[1]["error"]
    assert "RuntimeError" in Path(first[1]["error_file"]).read_text()
    # the failed pilot left no result: it is not "finished"
    pc = PilotCache(cache)
    assert pc.load(first[1]["key"]) is None
    assert pc.load(first[0]["key"])["accuracy"] == 0.25
    assert _calls(tmp_path) == ["a", "b", "c"]

    # a second run (e.g. after a crash) reruns only what did not finish
    second = run_pilots(_pilots(tmp_path, accs), fake_runner, cache, workers=1, progress=False)
    assert [r["status"] for r in second] == ["cached", "done", "cached"]
    assert [r["accuracy"] for r in second] == [0.25, 0.5, 0.75]
    assert _calls(tmp_path) == ["a", "b", "b", "c"]
    third = run_pilots(_pilots(tmp_path, accs), fake_runner, cache, workers=1, progress=False)
    assert [r["status"] for r in third] == ["cached"] * 3
    assert _calls(tmp_path) == ["a", "b", "b", "c"]


def test_key_depends_on_identity_not_payload(tmp_path):
    p1 = Pilot("x", {"dataset": "a", "seed": 0}, {"path": "/one"})
    p2 = Pilot("y", {"dataset": "a", "seed": 0}, {"path": "/two"})
    p3 = Pilot("x", {"dataset": "a", "seed": 1}, {"path": "/one"})
    assert p1.key == p2.key != p3.key


def test_result_file_is_json_with_identity(tmp_path):
    [res] = run_pilots(_pilots(tmp_path, {"a": 0.5}), fake_runner, tmp_path / "c", workers=1, progress=False)
    doc = json.loads((tmp_path / "c" / res["key"] / RESULT_FILE).read_text())
    assert doc["identity"] == {"dataset": "a", "seed": 0}
    assert doc["accuracy"] == 0.5 and doc["status"] == "done"
    # no temp files left behind by the atomic write
    assert not [p for p in (tmp_path / "c" / res["key"]).iterdir() if p.name.endswith(".tmp")]


def test_corrupt_result_is_reported_with_its_path(tmp_path):
    [p] = _pilots(tmp_path, {"a": 0.5})
    d = tmp_path / "c" / p.key
    d.mkdir(parents=True)
    (d / RESULT_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=rf"{p.key}/result.json:1: pilot result is not valid JSON"):
        run_pilots([p], fake_runner, tmp_path / "c", workers=1, progress=False)


def test_accuracy_outside_unit_interval_fails(tmp_path):
    [res] = run_pilots(_pilots(tmp_path, {"a": 1.5}), fake_runner, tmp_path / "c", workers=1, progress=False)
    assert res["status"] == "failed" and "outside [0, 1]" in res["error"]


def test_process_pool_runs_pilots_in_spawned_workers(tmp_path):
    accs = {"a": 0.1, "b": 0.2, "c": 0.3}
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=120)
    res = run_pilots(_pilots(tmp_path, accs, threads=True), fake_runner, tmp_path / "c", workers=2, threads=1,
                     progress=True, console=console, title="E1 pilots")
    assert [r["status"] for r in res] == ["done"] * 3
    assert [r["accuracy"] for r in res] == [0.1, 0.2, 0.3]
    assert all(r["threads"] == 1 for r in res)
    assert all(r["pid"] != os.getpid() for r in res)
    out = buf.getvalue()
    assert "E1 pilots: 3 done" in out and "30.0%" in out


def test_a_dead_worker_fails_its_pilot_and_the_rest_go_on(tmp_path):
    accs = {"a": 0.1, "b": 0.2, "c": 0.3}
    res = run_pilots(_pilots(tmp_path, accs, exit={"a"}), fake_runner, tmp_path / "c", workers=2, threads=1,
                     progress=False)
    by = {r["dataset"]: r for r in res}
    assert by["a"]["status"] == "failed" and "died" in by["a"]["error"] and math.isnan(by["a"]["accuracy"])
    # b ran beside a in the pool that broke (it may have finished first); c ran in a fresh pool
    assert by["b"]["status"] in ("done", "failed")
    assert by["c"]["status"] == "done" and by["c"]["accuracy"] == 0.3
    again = run_pilots(_pilots(tmp_path, accs), fake_runner, tmp_path / "c", workers=1, progress=False)
    assert [r["accuracy"] for r in again] == [0.1, 0.2, 0.3]
    assert by["c"]["key"] == again[2]["key"] and again[2]["status"] == "cached"


def test_board_counts_and_render():
    b = PilotBoard("E1")
    for k in "abcd":
        b.add(k, f"ds-{k}")
    b.set("a", "done", accuracy=0.5, seconds=3)
    b.set("b", "running")
    b.set("c", "failed", note="boom")
    assert b.counts() == {"queued": 1, "running": 1, "done": 1, "cached": 0, "failed": 1}
    buf = io.StringIO()
    Console(file=buf, width=100).print(b.render())
    text = buf.getvalue()
    assert "1 queued · 1 running · 1 done · 1 failed" in text
    assert "50.0%" in text and "boom" in text and "ds-d" in text
    with pytest.raises(ValueError, match="unknown pilot state"):
        b.set("a", "paused")


def test_default_workers():
    assert default_workers(1) == 1
    assert default_workers(2) == 2
    assert default_workers(16) == 2
