"""Fault tolerance, measured: a run killed with SIGKILL at a random moment and then rerun ends
exactly as an uninterrupted run; processes sharing one statistics cache split its work; a
grader that hangs costs its timeout, not the run.

Kill tests (`dmc score`, `dmc validate`, `dmc distill` on a tiny lab: listops, lab-small):

- the kill times are drawn from a seeded RNG, uniformly over the measured duration of an
  uninterrupted run of the same command in the same mode, from the moment it first wrote a file
  (before that a kill leaves nothing behind; in an exec run that is mostly the imports);
- the kill is SIGKILL of the run's whole process group (its pilot workers and its math-verify
  worker with it), and no process of the group may survive it;
- after the kill every Parquet / JSON / JSONL file under the run's directories (outputs and
  statistics cache) must be readable, except inside the directories transformers writes
  non-atomically (`checkpoints/`, `model/`), which are only counted here: the rerun rewrites them;
- the rerun is the same command (distill: with `--resume`, or without it when no checkpoint can be
  resumed) and must end with the uninterrupted run's results, and with every file readable.

Fast variants (normal suite): 2-3 kill points; the command runs in a forked copy of this process
(dmc already imported: no ~10 s interpreter start-up per run), pilots in-process (--workers 1).
Slow variants (`pytest -m slow`): >= 10 kill points; the installed `dmc` executable; validate
with 2 spawned pilot workers. Each prints one line per kill and a summary (see with `-s`).
"""

from __future__ import annotations

import errno
import json
import math
import multiprocessing as mp
import os
import random
import re
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

import dmc.cli.score  # noqa: F401 - registers `dmc score` before any fork (children then import nothing)
import dmc.cli.train  # noqa: F401 - registers `dmc distill`
import dmc.cli.validate  # noqa: F401 - registers `dmc validate`
import dmc.grading.worker as grading_worker
import dmc.stats.cache as cache_mod
from dmc.cli import app
from dmc.data.schema import CandidateDataset, EvalItem, Sample
from dmc.grading import AutoVerifier, MathVerifier, MathWorker
from dmc.grading import verifiers as verifiers_mod
from dmc.lab import build_lab
from dmc.scoring import ScoringSettings, score
from dmc.stats import AttemptSettings, StatsCache, TokenStatsSettings, compute_attempts, compute_token_stats
from dmc.stats import attempts as attempts_mod
from dmc.stats import tokens as tokens_mod
from dmc.students import tiny_student
from dmc.students.generation import Generation

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork, process groups and /proc: Linux only")

FORK = mp.get_context("fork")
DMC = Path(sys.executable).with_name("dmc")
RUN_LIMIT = 600.0  # seconds: an uninterrupted run or rerun that takes longer fails the test
HF_DIRS = ("checkpoints", "model")  # written by transformers' save_pretrained / Trainer, not atomically
EXEC_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "160", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread, and the CPU is shared (forked runs inherit it)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    """`dmc lab build --task listops --n 16 --n-eval 24`: 11 candidate datasets, 24 eval questions
    (eval.jsonl) and the first 8 of them (eval8.jsonl)."""
    root = tmp_path_factory.mktemp("lab")
    build_lab(root, family="listops", n=16, n_eval=24, seed=0)
    lab = root / "listops"
    lines = (lab / "eval.jsonl").read_text().splitlines(keepends=True)
    (lab / "eval8.jsonl").write_text("".join(lines[:8]))  # score's target questions: fewer attempts to generate
    return lab


# -- running a command and killing it ----------------------------------------------------------


@dataclass
class Run:
    code: int | None  # exit code; None when killed
    seconds: float
    log: Path
    first_output: float | None = None  # seconds until the run first wrote a file (when watched)

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


def _forked_cli(args: list[str], log: str, ready) -> None:
    """Body of a forked run: its own process group, output to `log`, then `dmc ARGS`."""
    os.setsid()
    grading_worker._default = None  # the parent's math-verify worker belongs to the parent: start our own
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__  # not pytest's capture
    ready.set()
    code = 1
    try:
        app(args, prog_name="dmc")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported in the log, as the CLI would
        traceback.print_exc()
    finally:
        for f in (sys.stdout, sys.stderr):
            f.flush()
        os._exit(code)


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(d.name))
    return out


def _kill_group(pgid: int) -> None:
    """SIGKILL the whole group, then wait until none of it is left."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 20
    while (left := _group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes {left} of the killed group {pgid} survived SIGKILL"


def _wrote_something(d: Path) -> bool:
    """Whether the run has written a file under `d` (its own log aside)."""
    return d.is_dir() and any(p.is_file() and p.suffix != ".log" for p in d.rglob("*"))


def run_dmc(args: list[str], log: Path, *, mode: str, kill_after: float | None = None,
            watch: Path | None = None) -> Run:
    """`dmc ARGS` in its own process group, killed (SIGKILL to the group) after `kill_after` s;
    with `watch`, also when the run first wrote a file under it (Run.first_output).

    mode "exec": the installed `dmc` executable; "fork": a forked copy of this process.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    limit = RUN_LIMIT if kill_after is None else kill_after
    if mode == "exec":
        with open(log, "w") as f:
            proc = subprocess.Popen([str(DMC), *args], stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, **EXEC_ENV})
        pid, t0 = proc.pid, time.perf_counter()
        poll = proc.poll
    else:
        ready = FORK.Event()
        p = FORK.Process(target=_forked_cli, args=(args, str(log), ready))
        p.start()
        assert ready.wait(30), "the forked run did not start"
        pid, t0 = p.pid, time.perf_counter()

        def poll() -> int | None:
            p.join(0)
            return p.exitcode

    first = None
    while (code := poll()) is None:
        now = time.perf_counter() - t0
        if now >= limit:
            break
        if watch is not None and first is None and _wrote_something(watch):
            first = now
        time.sleep(min(0.02, max(0.0, limit - now)))
    seconds = time.perf_counter() - t0
    _kill_group(pid)  # the run's whole group; nothing of a finished run may linger either
    if mode == "exec":
        proc.wait()
    else:
        p.join()
    if kill_after is None:
        assert code is not None, f"dmc {args[0]} did not finish within {RUN_LIMIT:.0f}s"
    return Run(code, seconds, log, first)


def unreadable(root: Path) -> tuple[list[str], list[str], int]:
    """(unreadable Parquet/JSON/JSONL files outside HF_DIRS, those inside HF_DIRS, leftover
    temporary files of interrupted atomic writes) under `root`."""
    bad, bad_hf, tmp = [], [], 0
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix not in (".parquet", ".json", ".jsonl"):
            continue
        if p.name.startswith(".tmp-"):
            tmp += 1
            continue
        try:
            if p.suffix == ".parquet":
                pq.read_table(p)
            elif p.suffix == ".json":
                json.loads(p.read_text(encoding="utf-8"))
            else:
                for line in p.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        json.loads(line)
        except Exception as e:  # noqa: BLE001 - any failure to read is what is looked for
            rel = p.relative_to(root)
            (bad_hf if set(rel.parts[:-1]) & set(HF_DIRS) else bad).append(f"{rel}: {type(e).__name__}: {e}")
    return bad, bad_hf, tmp


@dataclass
class Command:
    """One command under test: its arguments for a run directory, what its results are, and how
    to rerun it after a kill."""

    name: str
    args: Callable[[Path], list[str]]
    results: Callable[[Path], Any]  # run dir -> something to compare with ==
    progress: Callable[[Path], str]  # what a killed run left on disk, for the report
    rerun: Callable[[Path, str], tuple[Run, str]] | None = None  # (run dir, mode) -> (run, how)
    check: Callable[[Path, Path], None] | None = None  # further comparisons (reference dir, trial dir)


def kill_and_rerun(cmd: Command, tmp: Path, *, mode: str, n_kills: int) -> dict[str, Any]:
    """An uninterrupted reference run, then runs killed at seeded random times until `n_kills`
    were killed mid-run, each rerun to completion and compared with the reference. Returns the
    measurements.

    Kill times: (f + u * (1 - f)) * duration, u uniform from a seeded RNG, with the measured
    duration of an uninterrupted run and f the share of it before its first file. On a shared CPU
    run times vary: a run that finishes before its kill time is counted, its duration becomes the
    measured one when shorter, and the next draw replaces it."""
    ref_dir = tmp / "reference"
    ref = run_dmc(cmd.args(ref_dir), ref_dir / "run.log", mode=mode, watch=ref_dir)
    assert ref.code == 0, ref.output[-3000:]
    assert ref.first_output is not None
    assert unreadable(ref_dir) == ([], [], 0)
    expected = cmd.results(ref_dir)

    rng = random.Random(f"dmc-fault-tolerance/{cmd.name}/{mode}")
    report: dict[str, Any] = {"command": cmd.name, "mode": mode, "reference_seconds": round(ref.seconds, 2),
                              "first_output_seconds": round(ref.first_output, 2), "kills": [],
                              "finished_before_kill": 0}
    duration = ref.seconds
    for i in range(3 * n_kills):
        if len(report["kills"]) == n_kills:
            break
        # Over the part of the run after its first file: a kill before it leaves nothing to resume
        # from (and start-up, imports included, is most of an exec run's first seconds).
        f = ref.first_output / ref.seconds
        t = (f + rng.random() * (1 - f)) * duration
        d = tmp / f"kill{i:02d}"
        killed = run_dmc(cmd.args(d), d / "killed.log", mode=mode, kill_after=t)
        if killed.code is not None:
            assert killed.code == 0, killed.output[-3000:]
            report["finished_before_kill"] += 1
            duration = min(duration, killed.seconds)
            print(f"[{cmd.name}/{mode}] draw {i}: the run finished in {killed.seconds:.2f}s, before its kill "
                  f"time {t:.2f}s", flush=True)
            continue
        left = cmd.progress(d)
        bad, bad_hf, n_tmp = unreadable(d)
        assert bad == [], f"kill {i} at {t:.2f}s left unreadable files: {bad}"
        if cmd.rerun is not None:
            rerun, how = cmd.rerun(d, mode)
        else:
            rerun, how = run_dmc(cmd.args(d), d / "rerun.log", mode=mode), "same command"
        assert rerun.code == 0, f"rerun after kill {i} at {t:.2f}s failed:\n{rerun.output[-3000:]}"
        assert unreadable(d)[:2] == ([], []), f"after the rerun of kill {i}: {unreadable(d)}"
        same = cmd.results(d) == expected
        if same and cmd.check is not None:
            cmd.check(ref_dir, d)
        entry = {"kill_at": round(t, 2), "left": left, "unreadable_in_hf_dirs": len(bad_hf), "tmp_files": n_tmp,
                 "rerun": how, "rerun_seconds": round(rerun.seconds, 2), "identical": same}
        report["kills"].append(entry)
        print(f"[{cmd.name}/{mode}] kill {i} at {t:.2f}s of {f * duration:.1f}-{duration:.1f}s: {entry}",
              flush=True)
        assert same, f"the rerun after kill {i} at {t:.2f}s differs from the uninterrupted run"
    ks = report["kills"]
    assert len(ks) == n_kills, f"only {len(ks)} of {3 * n_kills} draws killed the run before it finished"
    report["summary"] = {
        "kill_points": len(ks), "identical": sum(k["identical"] for k in ks),
        "finished_before_kill": report["finished_before_kill"],
        "mean_rerun_seconds": round(sum(k["rerun_seconds"] for k in ks) / len(ks), 2),
        "unreadable_in_hf_dirs": sum(k["unreadable_in_hf_dirs"] for k in ks),
        "tmp_files": sum(k["tmp_files"] for k in ks)}
    print(f"[{cmd.name}/{mode}] SUMMARY reference {ref.seconds:.1f}s (first file at {ref.first_output:.1f}s) "
          f"{json.dumps(report['summary'])}", flush=True)
    return report


# -- the three commands ------------------------------------------------------------------------

SCORE_POOL = ("stepwise", "terse", "noisy70")
VALIDATE_POOL = ("stepwise", "terse", "noisy70", "answer-only")
DISTILL_POOL = ("stepwise", "terse", "noisy70")
# The fast variants grade listops' answers (lists such as "[0, 4]") as normalized text: "auto"
# sends every answer that is not a plain number to math-verify's worker, about half of a run's time
# here. The slow variants keep "auto" (and so a math-verify worker in the killed process group).
FAST_FLAGS = ["--verifier", "normalized"]


def _with(flags: list[str], args: Callable[[Path], list[str]], d: Path) -> list[str]:
    return args(d) + flags


def _pool(lab: Path, names: tuple[str, ...]) -> list[str]:
    return [str(lab / "pool" / f"{n}.jsonl") for n in names]


def _score_args(lab: Path, d: Path) -> list[str]:
    """8 samples of each of 3 datasets (8 shared questions) and 8 target questions; small batches,
    so that a run writes a dozen shards."""
    return ["score", *_pool(lab, SCORE_POOL), "--student", "lab-small", "--eval", str(lab / "eval8.jsonl"),
            "--out", str(d / "score"), "--cache", str(d / "cache"), "--no-progress", "--max-samples", "8",
            "--batch-tokens", "512", "--attempt-max-new-tokens", "64", "--attempt-batch-size", "4"]


def score_results(out: Path) -> dict[str, Any]:
    """datasets.json (every metric of every dataset, and the run's description less its timings,
    counters and cache path) and samples.parquet (every column, exactly)."""
    doc = json.loads((out / "datasets.json").read_text())
    meta = {k: v for k, v in doc["meta"].items() if k != "run"}
    meta["stats"] = {k: v for k, v in meta["stats"].items() if k != "cache"}
    samples = pd.read_parquet(out / "samples.parquet")
    return {"datasets": doc["datasets"], "meta": meta, "samples": _frame(samples)}


def _frame(df: pd.DataFrame) -> list:
    """A table as nested lists that compare with ==, NaN equal to NaN."""
    def cell(v):
        if isinstance(v, float) and math.isnan(v):
            return "NaN"
        if isinstance(v, np.ndarray):
            return [cell(x) for x in v.tolist()]
        if isinstance(v, np.generic):
            return cell(v.item())
        return v
    return [list(df.columns)] + [[cell(v) for v in row] for row in df.itertuples(index=False)]


def _shards(d: Path) -> int:
    return len(list(d.rglob("*.parquet"))) if d.is_dir() else 0


def score_command(lab: Path, *, fast: bool) -> Command:
    return Command("score", partial(_with, FAST_FLAGS if fast else [], partial(_score_args, lab)),
                   lambda d: score_results(d / "score"), lambda d: f"{_shards(d / 'cache')} cache shards")


def _validate_args(lab: Path, small: bool, workers: int, d: Path) -> list[str]:
    """E1 on 4 datasets x 16 samples, 24 eval questions; `small` (the fast variant): 3 datasets x 8
    samples, 8 eval questions (the mechanics, with less spread in the accuracies)."""
    pool, ev, n = (VALIDATE_POOL[:3], "eval8.jsonl", "8") if small else (VALIDATE_POOL, "eval.jsonl", "16")
    return ["validate", *_pool(lab, pool), "--student", "lab-small", "--eval", str(lab / ev),
            "--out", str(d / "val"), "--cache", str(d / "cache"), "--experiments", "e1", "--no-progress",
            "--no-report", "--workers", str(workers), "--threads", "1", "--steps", "8", "--lr", "3e-4",
            "--batch-size", "4", "--pilot-samples", n, "--max-samples", n, "--n-boot", "50",
            "--eval-max-new-tokens", "96", "--attempt-max-new-tokens", "96"]


def validate_results(d: Path) -> dict[str, Any]:
    """e1.json: every pilot's accuracy (and key, error) and everything computed from them:
    correlations with CIs, the headline, the per-dataset table; plus the initial scores."""
    e1 = json.loads((d / "val" / "e1.json").read_text())
    pilots = sorted((p["dataset"], p["seed"], p["accuracy"], p["key"], p["error"]) for p in e1.pop("pilots"))
    return {"e1": e1, "pilots": pilots, "scores": score_results(d / "val" / "scores")}


def _validate_progress(d: Path) -> str:
    pilots = d / "val" / "pilots"
    done = len(list(pilots.glob("*/result.json"))) if pilots.is_dir() else 0
    return f"{_shards(d / 'cache')} cache shards, {done} pilots finished"


def validate_command(lab: Path, *, fast: bool, workers: int) -> Command:
    return Command("validate", partial(_with, FAST_FLAGS if fast else [], partial(_validate_args, lab, fast, workers)),
                   validate_results, _validate_progress)


def _distill_args(lab: Path, d: Path) -> list[str]:
    return ["distill", *_pool(lab, DISTILL_POOL), "--student", "lab-small", "--eval", str(lab / "eval.jsonl"),
            "--out", str(d / "dist"), "--cache", str(d / "cache"), "--strategy", "dynamic-dmc", "--steps", "24",
            "--save-every", "4", "--batch-size", "4", "--lr", "3e-4", "--rescore-every", "8", "--probe-size", "4",
            "--capability-size", "4", "--target-size", "8", "--max-samples", "16", "--eval-max-new-tokens", "96",
            "--attempt-max-new-tokens", "96", "--bf16", "false"]


def distill_results(d: Path) -> dict[str, Any]:
    """The final accuracy and step, every step's training loss, the curriculum's decisions and
    scores, and the static scores (weights: see `_same_weights`). The mean train loss of
    metrics.json is not compared: after a resume transformers averages only the steps run since."""
    run = d / "dist"
    m = json.loads((run / "metrics.json").read_text())
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    losses = [(e["step"], e["loss"], e.get("grad_norm")) for e in events if e["event"] == "train" and "loss" in e]
    decisions = [{k: v for k, v in e.items() if k not in ("seconds", "timing")}  # wall times
                 for e in events if e["event"] in ("rescore", "mixture")]
    return {"accuracy": m["final_eval"]["accuracy"], "n_correct": m["final_eval"]["n_correct"],
            "global_step": m["global_step"], "losses": losses, "decisions": decisions,
            "rows_drawn": m["curriculum"]["rows_drawn"],
            "strategy": json.loads((run / "strategy.json").read_text())}


def _same_weights(ref: Path, d: Path) -> None:
    _same_weights_as(load_file(str(ref / "dist" / "model" / "model.safetensors")), d)


def _same_weights_as(a: dict[str, torch.Tensor], d: Path) -> None:
    b = load_file(str(d / "dist" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"weight {k} differs from the uninterrupted run's"


def _distill_progress(d: Path) -> str:
    ck = d / "dist" / "checkpoints"
    names = sorted(p.name for p in ck.iterdir()) if ck.is_dir() else []
    return f"{_shards(d / 'cache')} cache shards, checkpoints {names}"


def _distill_rerun(args: Callable[[Path], list[str]], d: Path, mode: str) -> tuple[Run, str]:
    """Rerun with --resume; when no checkpoint can be resumed (killed before the first one was
    complete) dmc says so, and the run starts over without it."""
    r = run_dmc(args(d) + ["--resume"], d / "rerun.log", mode=mode)
    if r.code != 0 and "no checkpoint to resume from" in r.output:
        return run_dmc(args(d), d / "rerun-fresh.log", mode=mode), "no checkpoint: fresh"
    config = json.loads((d / "dist" / "config.json").read_text())
    return r, f"--resume from {Path(config['resumed_from']).name if config.get('resumed_from') else None}"


def distill_command(lab: Path, *, fast: bool) -> Command:
    args = partial(_with, FAST_FLAGS if fast else [], partial(_distill_args, lab))
    return Command("distill", args, distill_results, _distill_progress, rerun=partial(_distill_rerun, args),
                   check=_same_weights)


# -- fast variants: 2-3 kill points, forked runs --------------------------------------------------


def test_score_killed_then_rerun_equals_uninterrupted(lab, tmp_path):
    rep = kill_and_rerun(score_command(lab, fast=True), tmp_path, mode="fork", n_kills=3)
    assert rep["summary"]["identical"] == 3


def test_validate_killed_then_rerun_equals_uninterrupted(lab, tmp_path):
    rep = kill_and_rerun(validate_command(lab, fast=True, workers=1), tmp_path, mode="fork", n_kills=2)
    assert rep["summary"]["identical"] == 2


def test_distill_killed_then_resumed_equals_uninterrupted(lab, tmp_path):
    rep = kill_and_rerun(distill_command(lab, fast=True), tmp_path, mode="fork", n_kills=3)
    assert rep["summary"]["identical"] == 3


# -- slow variants: >= 10 kill points, the installed executable ---------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_score_sigkill_at_10_random_points(lab, tmp_path):
    rep = kill_and_rerun(score_command(lab, fast=False), tmp_path, mode="exec", n_kills=10)
    assert rep["summary"]["identical"] == 10


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_validate_sigkill_at_10_random_points(lab, tmp_path):
    rep = kill_and_rerun(validate_command(lab, fast=False, workers=2), tmp_path, mode="exec", n_kills=10)
    assert rep["summary"]["identical"] == 10


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_distill_sigkill_at_10_random_points(lab, tmp_path):
    rep = kill_and_rerun(distill_command(lab, fast=False), tmp_path, mode="exec", n_kills=10)
    assert rep["summary"]["identical"] == 10


def test_resume_skips_a_checkpoint_cut_short_by_a_kill(lab, tmp_path):
    """A kill while a checkpoint is saved leaves it without its trainer state or curriculum state
    (transformers writes trainer_state.json last, the curriculum its state after that): --resume
    takes the checkpoint before it and still ends as an uninterrupted run."""
    d = tmp_path / "cut"
    args = distill_command(lab, fast=True).args
    full = run_dmc(args(d), d / "run.log", mode="fork")
    assert full.code == 0, full.output[-3000:]
    expected = distill_results(d)
    weights = load_file(str(d / "dist" / "model" / "model.safetensors"))
    ck = d / "dist" / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["checkpoint-20", "checkpoint-24"]
    # as if killed while saving checkpoint-24 (curriculum state not written yet) after the whole
    # run had been killed at step 22: checkpoint-20 is the one to resume from
    (ck / "checkpoint-24" / "dmc_curriculum.json").unlink()
    r = run_dmc(args(d) + ["--resume"], d / "rerun.log", mode="fork")
    assert r.code == 0, r.output[-3000:]
    assert json.loads((d / "dist" / "config.json").read_text())["resumed_from"].endswith("checkpoint-20")
    assert distill_results(d) == expected
    _same_weights_as(weights, d)
    # a cut trainer_state.json (killed mid-write) is skipped the same way
    (ck / "checkpoint-24" / "trainer_state.json").write_text('{"global_step": 2')
    r = run_dmc(args(d) + ["--resume"], d / "rerun2.log", mode="fork")
    assert r.code == 0, r.output[-3000:]
    assert json.loads((d / "dist" / "config.json").read_text())["resumed_from"].endswith("checkpoint-20")
    assert distill_results(d) == expected
    _same_weights_as(weights, d)


# -- two processes sharing one statistics cache --------------------------------------------------

N_SHARED = 24
SHARED_TOKENS = TokenStatsSettings(batch_tokens=1, with_ifd=True)  # every sample is a batch of its own
SHARED_ATTEMPTS = AttemptSettings(max_new_tokens=6, batch_size=2)  # two questions per batch


def _shared_samples() -> list[Sample]:
    return [Sample(id=str(i), prompt=({"role": "user", "content": f"Add {i} and {3 * i + 2}."},),
                   response=f"{i} + {3 * i + 2} = {4 * i + 2}." + " Check." * (i % 4), gold=str(4 * i + 2),
                   dataset="D") for i in range(N_SHARED)]


def _slowed(fn, delay):
    def slow(*a, **k):
        time.sleep(delay)
        return fn(*a, **k)
    return slow


def _share_worker(cache_dir: str, out: str, barrier, delay: float) -> None:
    """One of the processes sharing the cache (forked): tokens then attempts, each batch slowed so
    that the two overlap from start to end."""
    code = 1
    try:
        grading_worker._default = None
        tokens_mod.score_batch = _slowed(tokens_mod.score_batch, delay)  # this process only (forked)
        attempts_mod.generate = _slowed(attempts_mod.generate, delay)
        student = tiny_student("chatml", seed=3)
        samples = _shared_samples()
        barrier.wait(timeout=60)
        tok = compute_token_stats(student, samples, SHARED_TOKENS, cache=StatsCache(cache_dir), progress=False)
        att = compute_attempts(student, samples, SHARED_ATTEMPTS, cache=StatsCache(cache_dir), progress=False)
        pd.to_pickle({"tokens": tok, "attempts": att, "runs": {"tokens": tok.attrs["run"], "attempts": att.attrs["run"]}},
                     out)
        code = 0
    except BaseException:  # noqa: BLE001 - the parent sees the exit code
        traceback.print_exc()
    finally:
        os._exit(code)


def test_two_processes_share_one_cache_without_duplicated_work(tmp_path):
    cache = tmp_path / "cache"
    barrier = FORK.Barrier(2)
    outs = [tmp_path / f"p{i}.pkl" for i in range(2)]
    procs = [FORK.Process(target=_share_worker, args=(str(cache), str(o), barrier, 0.05)) for o in outs]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    wall = time.perf_counter() - t0
    assert [p.exitcode for p in procs] == [0, 0]
    a, b = (pd.read_pickle(o) for o in outs)

    # no corruption: every shard readable; the cache holds each item once
    assert unreadable(cache) == ([], [], 0)
    student = tiny_student("chatml", seed=3)
    tok_cached, tok_report = StatsCache(cache).load("tokens", student.fingerprint, SHARED_TOKENS.settings_hash)
    att_cached, att_report = StatsCache(cache).load("attempts", student.fingerprint, SHARED_ATTEMPTS.settings_hash)
    assert tok_cached.num_rows == N_SHARED and att_cached.num_rows == N_SHARED

    # identical tables, equal to a single process's
    assert _frame(a["tokens"]) == _frame(b["tokens"])
    assert _frame(a["attempts"]) == _frame(b["attempts"])
    samples = _shared_samples()
    assert _frame(a["tokens"]) == _frame(compute_token_stats(student, samples, SHARED_TOKENS, progress=False))
    assert _frame(a["attempts"]) == _frame(compute_attempts(student, samples, SHARED_ATTEMPTS, progress=False))

    # the work was split: duplicated work at most one batch (one sample; two questions)
    dup = {}
    for table, per_batch, report in (("tokens", 1, tok_report), ("attempts", 2, att_report)):
        ra, rb = a["runs"][table], b["runs"][table]
        assert ra["computed"] + ra["reused"] == N_SHARED and rb["computed"] + rb["reused"] == N_SHARED
        assert ra["computed"] > 0 and rb["computed"] > 0, (ra, rb)
        dup[table] = ra["computed"] + rb["computed"] - N_SHARED
        assert 0 <= dup[table] <= per_batch and report.duplicates == dup[table]
    print(f"[shared cache] wall {wall:.1f}s; computed tokens {a['runs']['tokens']['computed']}+"
          f"{b['runs']['tokens']['computed']}, attempts {a['runs']['attempts']['computed']}+"
          f"{b['runs']['attempts']['computed']} of {N_SHARED} each; duplicated {dup}")


def _hold_claim(cache_dir: str, held) -> None:
    StatsCache(cache_dir).claim("tokens", "fp", "sh", "batch")  # kept until this process dies
    held.set()
    time.sleep(120)
    os._exit(0)


def test_a_claim_is_exclusive_and_dies_with_its_holder(tmp_path):
    """A batch claimed by a process is not handed to another until that process releases it or is
    killed (SIGKILL included): a killed run never blocks the next one."""
    cache = StatsCache(tmp_path)
    held = FORK.Event()
    p = FORK.Process(target=_hold_claim, args=(str(tmp_path), held))
    p.start()
    try:
        assert held.wait(30)
        assert cache.claim("tokens", "fp", "sh", "batch") is None
        other = cache.claim("tokens", "fp", "sh", "another batch")
        assert other is not None
        other.release()
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.join()
    c = cache.claim("tokens", "fp", "sh", "batch")  # the lock file is still there, its lock is not
    assert c is not None
    with c:
        assert cache.claim("tokens", "fp", "sh", "batch") is None  # exclusive within a process too
    assert list((cache.directory("tokens", "fp", "sh") / ".claims").iterdir()) == []


def test_without_file_locks_claims_are_not_exclusive_but_work_goes_on(tmp_path, monkeypatch):
    """A file system that refuses locks (ENOLCK on some network mounts) costs the sharing, not the run."""
    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(cache_mod.fcntl, "flock", no_locks)
    cache = StatsCache(tmp_path)
    with cache.claim("tokens", "fp", "sh", "batch") as c:
        assert c is not None and cache.claim("tokens", "fp", "sh", "batch") is not None
    student, samples = tiny_student("chatml", seed=3), _shared_samples()[:4]
    df = compute_token_stats(student, samples, SHARED_TOKENS, cache=cache, progress=False)
    assert df.attrs["run"]["computed"] == 4
    assert compute_token_stats(student, samples, SHARED_TOKENS, cache=cache, progress=False).attrs["run"]["reused"] == 4


_COUNTS = re.compile(r"(token statistics|student attempts): (\d+) \w+ computed, (\d+) reused")


@pytest.mark.slow
def test_two_dmc_score_runs_share_one_cache(lab, tmp_path):
    """`dmc score ... --cache SAME` twice at once (one sample / two questions per batch, so that
    there is work to share)."""
    def args(out: str) -> list[str]:
        return ["score", *_pool(lab, SCORE_POOL), "--student", "lab-small", "--eval", str(lab / "eval.jsonl"),
                "--out", str(tmp_path / out), "--cache", str(tmp_path / ("cache-ref" if out == "ref" else "cache-shared")),
                "--no-progress", "--attempt-max-new-tokens", "96", "--batch-tokens", "1", "--attempt-batch-size", "2"]

    ref = run_dmc(args("ref"), tmp_path / "ref.log", mode="exec")
    assert ref.code == 0, ref.output[-3000:]
    procs = []
    t0 = time.perf_counter()
    for name in ("a", "b"):
        f = open(tmp_path / f"{name}.log", "w")
        procs.append((subprocess.Popen([str(DMC), *args(name)], stdout=f, stderr=subprocess.STDOUT,
                                       start_new_session=True, env={**os.environ, **EXEC_ENV}), f))
    for p, f in procs:
        assert p.wait(timeout=RUN_LIMIT) == 0
        f.close()
    wall = time.perf_counter() - t0
    assert unreadable(tmp_path / "cache-shared") == ([], [], 0)
    expected = score_results(tmp_path / "ref")
    assert score_results(tmp_path / "a") == expected and score_results(tmp_path / "b") == expected
    counts = {}
    for name in ("a", "b"):
        for what, computed, reused in _COUNTS.findall((tmp_path / f"{name}.log").read_text()):
            counts.setdefault(what, []).append((int(computed), int(reused)))
    totals = {what: int(m.group(2)) for m in _COUNTS.finditer(ref.output) for what in [m.group(1)]}
    dup = {what: sum(c for c, _ in v) - totals[what] for what, v in counts.items()}
    print(f"[shared cache, dmc score x2] wall {wall:.1f}s (one alone: {ref.seconds:.1f}s); (computed, reused) "
          f"{counts}; duplicated {dup}")
    assert dup["token statistics"] <= 1 and dup["student attempts"] <= 2  # one batch
    assert all(c > 0 for c, _ in counts["token statistics"] + counts["student attempts"])


# -- a grader that hangs -------------------------------------------------------------------------

HANG_MODULE = '''
import time

def hang_verify(gold, answer, timeout):
    time.sleep(60)
    return {"status": "correct", "reason": None}
'''


def test_hanging_grader_is_ungradable_within_its_timeout_on_the_score_path(tmp_path, monkeypatch):
    """`dmc score`'s grading (compute_attempts -> grade_many -> the "auto" verifier -> math-verify
    in its worker) with a math-verify that hangs: every such attempt is ungradable ("timeout") after
    the timeout, and the scores are still computed. (tests/integration/test_grading.py covers a
    MathVerifier called directly, not this path.)"""
    (tmp_path / "hang_mod.py").write_text(HANG_MODULE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    worker = MathWorker()
    try:
        assert worker.call("math:sqrt", [1.0], timeout=30).value == 1.0  # start-up is not timed
        timeout = 1.0
        monkeypatch.setitem(verifiers_mod.VERIFIERS, "auto", partial(AutoVerifier, timeout=timeout, worker=worker))
        monkeypatch.setattr(MathVerifier, "verify_fn", "hang_mod:hang_verify")

        def generate(student, prompts, *, k=1, **kw):  # the student answers every question with x^2
            return [[Generation(r"So it is \boxed{x^2}", [5, 6, 7], False, 1.0) for _ in range(k)] for _ in prompts]

        monkeypatch.setattr(attempts_mod, "generate", generate)
        golds = ["x^2+1", "2x", r"\sqrt{x}"]  # symbolic golds: the auto verifier sends them to math-verify
        pool = [CandidateDataset("D", [Sample(str(i), ({"role": "user", "content": f"Expand {g}."},),
                                              f"It is {g}. The answer is {g}.", g, dataset="D")
                                       for i, g in enumerate(golds)])]
        evals = [EvalItem("e0", ({"role": "user", "content": "What is y?"},), "y+1")]
        student = tiny_student("chatml")
        settings = ScoringSettings(attempts=AttemptSettings(max_new_tokens=4))
        t0 = time.monotonic()
        report = score(pool, student, eval_set=evals, settings=settings, cache_dir=tmp_path / "cache")
        elapsed = time.monotonic() - t0
        assert len(report.samples) == 3 and report.datasets.shape[0] == 1
        att, _ = StatsCache(tmp_path / "cache").load("attempts", student.fingerprint, settings.attempts.settings_hash)
        assert att.num_rows == 4
        assert set(att["grade"].to_pylist()) == {"ungradable"} and set(att["reason"].to_pylist()) == {"timeout"}
        # 4 distinct (answer, gold) pairs hang, each cut at the timeout
        assert elapsed < 4 * (timeout + 2) + 15, f"scoring took {elapsed:.1f}s"
        assert worker.restarts == 4
        print(f"[hanging grader] score() with 4 hanging math-verify calls: {elapsed:.1f}s "
              f"(timeout {timeout}s each, {worker.restarts} worker restarts)")
    finally:
        worker.close()
