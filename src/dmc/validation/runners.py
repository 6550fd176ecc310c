"""What one pilot does, in a worker process: load the student, data and eval set from files,
train with dmc.training, and return the accuracy (greedy pass@1 on the eval set, in [0, 1],
higher = better) plus what the reports plot.

Payloads are plain JSON (paths and settings) so that they cross process boundaries; see
dmc.validation.protocol for how they are built.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from transformers.utils import logging as hf_logging

from dmc.curriculum import CurriculumSettings
from dmc.data import load_dataset, load_eval_set
from dmc.scoring import ScoringSettings
from dmc.settings import from_dict
from dmc.students import load_student
from dmc.training import TrainConfig, distill, train
from dmc.training.io import RunLog

TRAIN_SUBDIR = "train"


def _load_common(payload: dict[str, Any], run_dir: Path):
    hf_logging.disable_progress_bar()  # the pilot board is the progress display
    student = load_student(payload["student"], device=payload.get("device", "cpu"))
    evals = load_eval_set(payload["eval"])
    cfg = from_dict(TrainConfig, {**payload["train"], "output_dir": str(run_dir / TRAIN_SUBDIR)})
    return student, evals, cfg


def _final(res) -> dict[str, Any]:
    ev = res.final_eval
    out: dict[str, Any] = {"accuracy": ev.accuracy, "n_eval": ev.n, "n_correct": ev.n_correct,
                           "n_ungradable": ev.n_ungradable, "n_truncated": ev.n_truncated,
                           "train_loss": res.train_loss, "global_step": res.global_step,
                           "train_seconds": res.metrics.get("train_seconds")}
    if math.isnan(ev.accuracy):
        out["accuracy_reason"] = f"none of the {ev.n} eval answers could be graded ({ev.n_ungradable} ungradable)"
    return out


def _curve(res, final_accuracy: float) -> list[dict[str, Any]]:
    pts = [{"step": int(e["step"]), "accuracy": e.get("accuracy")} for e in res.evals]
    if not pts or pts[-1]["step"] != res.global_step:
        pts.append({"step": int(res.global_step), "accuracy": None if math.isnan(final_accuracy) else final_accuracy})
    return pts


def sft_pilot(payload: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Train on one JSONL of samples (`payload["data"]`) with the same budget as every other
    pilot, then evaluate. Used by E1 (one candidate dataset) and E2 (a metric's selection)."""
    student, evals, cfg = _load_common(payload, run_dir)
    data = load_dataset(payload["data"], name=payload.get("name"))
    res = train(student, data, cfg, evals, verifier=payload.get("verifier", "auto"))
    out = _final(res)
    out["curve"] = _curve(res, out["accuracy"])
    out["n_train_samples"] = len(data)
    return out


def strategy_pilot(payload: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Train on the whole pool under a data strategy of dmc.curriculum.strategies (E3: ``uniform``,
    ``static-dmc``, ``dynamic-dmc`` ...) for a fixed number of steps, via `dmc.training.distill`.

    Returns the final accuracy, the accuracy curve, every mixture decision and, for the dynamic
    curriculum, the DMC of each dataset at each re-score (read back from the run's log.jsonl).
    """
    student, evals, cfg = _load_common(payload, run_dir)
    pool = [load_dataset(path, name=name) for name, path in payload["pool"].items()]
    res = distill(pool, student, evals, strategy=payload["strategy"], config=cfg,
                  settings=from_dict(CurriculumSettings, payload["curriculum"]),
                  scoring=from_dict(ScoringSettings, payload["scoring"]), cache_dir=payload.get("cache_dir"),
                  verifier=payload.get("verifier", "auto"))
    out = _final(res)
    out["curve"] = _curve(res, out["accuracy"])
    events = RunLog(res.log_path).read()
    out["mixtures"] = [{"step": int(e["step"]), "mixture": e["mixture"], "reason": e.get("reason")}
                       for e in events if e.get("event") in ("mixture", "rescore") and "mixture" in e]
    out["scores"] = [{"step": int(e["step"]), "scores": e["scores"], "noise": e.get("noise"), "details": e.get("details")}
                     for e in events if e.get("event") == "rescore"]
    cur = res.metrics.get("curriculum") or {}
    out["rows_drawn"] = cur.get("rows_drawn")
    out["rescore_seconds"] = cur.get("rescore_seconds")
    return out
