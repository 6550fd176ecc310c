"""Trainer callbacks for the run directory: JSONL logging and periodic evaluation on the eval set."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from dmc.data.schema import EvalItem
from dmc.evaluation import evaluate
from dmc.training.io import RunLog


class JsonlLogCallback(TrainerCallback):
    """Appends every Trainer log (loss, learning rate, grad norm, runtime ...) to the run's log.jsonl."""

    def __init__(self, log: RunLog):
        self.log = log

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            self.log.write({"event": "train", "step": state.global_step, "epoch": state.epoch, **logs})


class PeriodicEvalCallback(TrainerCallback):
    """Greedy accuracy on the eval set (or its first `limit` questions) every `every` optimizer steps,
    and at step 0 of a fresh run; each result is logged as an `eval` event and kept in `history`.

    Accuracy is greedy pass@1 in [0, 1], higher = better (see `dmc.evaluation`). Evaluation runs
    under forked RNG states so it does not change the training randomness. In a distributed run
    rank 0 evaluates (the other ranks wait for it at the next gradient all-reduce).
    """

    def __init__(
        self,
        student,
        eval_items: Sequence[EvalItem],
        *,
        every: int,
        log: RunLog | None = None,
        limit: int | None = None,
        max_new_tokens: int = 256,
        batch_size: int = 16,
        verifier: str = "auto",
    ):
        if every < 1:
            raise ValueError(f"eval every must be >= 1 step, got {every}")
        self.student = student
        self.items = list(eval_items)[:limit] if limit else list(eval_items)
        self.every = every
        self.log = log
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.verifier = verifier
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0

    def run(self, step: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                res = evaluate(self.student, self.items, max_new_tokens=self.max_new_tokens,
                               batch_size=self.batch_size, verifier=self.verifier)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        self.seconds += time.perf_counter() - t0
        event = {"event": "eval", "step": step, "accuracy": None if math.isnan(res.accuracy) else res.accuracy,
                 "n": res.n, "n_correct": res.n_correct, "n_ungradable": res.n_ungradable,
                 "n_truncated": res.n_truncated, "seconds": res.seconds}
        self.history.append(event)
        if self.log is not None:
            self.log.write(event)
        return event

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0 and state.is_world_process_zero:
            self.run(0)

    def on_step_end(self, args, state, control, **kwargs):
        if (state.global_step % self.every == 0 and state.global_step < state.max_steps
                and state.is_world_process_zero):
            self.run(state.global_step)


class StopAtStep(TrainerCallback):
    """Stops training after optimizer step `step` (after that step's logging and checkpoint)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control
