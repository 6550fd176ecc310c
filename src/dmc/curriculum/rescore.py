"""The default re-scorer of the dynamic curriculum: DMC of each probe subset under the current
weights, through the one scoring path (`dmc.scoring.score_pool`, the one behind `dmc score`).

Each call computes, without the disk cache (the weights are new at every call):

- token statistics of every probe trace (alignment A and quality q need them);
- the student's own attempts (capability) at `capability_size` probe questions per dataset and at
  `target_size` target questions (C_T). Questions are picked by the same seeded question rank as
  the probes, so datasets that share questions share attempts;

then DMC per dataset (range [0, 1], higher = more compatible; NaN with a reason when a dataset has
no scorable sample). Attempts are the costly part: their token budget defaults to 1.5 x the
longest probe trace (in the student's tokens), capped by the attempts' `max_new_tokens`, since
an attempt that runs far past every teacher trace has lost its way.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from dmc.curriculum.settings import CurriculumSettings
from dmc.data.schema import CandidateDataset, EvalItem, Sample
from dmc.scoring import ScoringSettings, score_pool
from dmc.stats import question_hash
from dmc.stats.subsample import seeded_order


def rescore_settings(scoring: ScoringSettings, device_type: str) -> ScoringSettings:
    """The settings of a re-score: DMC only, without its bootstrap interval (it is not used to pick
    a mixture), attempts in one generation batch and, on a CPU, small padded scoring batches
    (throughput only; results are unchanged: 176 lab traces took 1.1 s with 2048 tokens per batch,
    1.9 s with 8192)."""
    tokens = dataclasses.replace(scoring.tokens, batch_tokens=2048) if device_type == "cpu" else scoring.tokens
    return dataclasses.replace(scoring, metrics=("dmc",), tokens=tokens,
                               attempts=dataclasses.replace(scoring.attempts, batch_size=64),
                               metric=dataclasses.replace(scoring.metric, n_boot=0))


class DMCRescorer:
    """`rescore_fn` computing DMC per dataset; `last_details` holds the components of the last call.

    target: the target questions (the eval set) for C_T; None = the probe questions themselves.
    target_size / capability_size: questions attempted per call for C_T / per dataset for C_D
    (None = all). attempt_budget: "auto" (see the module docstring) or a fixed max_new_tokens.
    scoring: the scoring settings (metric definitions, statistics, attempts) of every re-score.
    """

    def __init__(
        self,
        target: Sequence[EvalItem] | None = None,
        *,
        target_size: int | None = CurriculumSettings.target_size,
        capability_size: int | None = CurriculumSettings.capability_size,
        attempt_budget: int | str = CurriculumSettings.attempt_budget,
        scoring: ScoringSettings | None = None,
        seed: int = 0,
    ):
        if attempt_budget != "auto" and (not isinstance(attempt_budget, int) or attempt_budget < 1):
            raise ValueError(f"attempt_budget must be 'auto' or a positive int, got {attempt_budget!r}")
        self.scoring = scoring or ScoringSettings()
        self.attempt_budget = attempt_budget
        self.capability_size = capability_size
        self.seed = seed
        items = list(target) if target is not None else None
        if items is not None and target_size is not None and len(items) > target_size:
            items = seeded_order(items, question_hash, seed)[:target_size]
        self.target = items
        self._settings: ScoringSettings | None = None  # fixed at the first call: the probes never change
        self.last_timing: dict[str, Any] = {}
        self.last_details: dict[str, dict[str, Any]] = {}

    def _settings_for(self, student, samples: Sequence[Sample]) -> ScoringSettings:
        if self._settings is None:
            s = rescore_settings(self.scoring, student.device.type)
            budget = self.attempt_budget
            if budget == "auto":
                longest = max((len(student.encode(x.prompt, x.response).response_ids) for x in samples), default=1)
                budget = max(1, min(s.attempts.max_new_tokens, math.ceil(1.5 * longest) + 1))
            self._settings = dataclasses.replace(s, attempts=dataclasses.replace(s.attempts, max_new_tokens=int(budget)))
        return self._settings

    def capability_questions(self, probes: Mapping[str, list[Sample]]) -> list[Sample]:
        """The probe samples whose questions are attempted: the first `capability_size` questions of
        each dataset by question rank (shared questions are attempted once)."""
        out: list[Sample] = []
        for samples in probes.values():
            qs = seeded_order({s.question_hash: s for s in samples}.items(), lambda kv: kv[0], self.seed)
            out.extend(s for _, s in (qs if self.capability_size is None else qs[: self.capability_size]))
        return out

    def __call__(self, student, probes: Mapping[str, list[Sample]]) -> dict[str, float]:
        t0 = time.perf_counter()
        pool = [CandidateDataset(name, [_named(s, name) for s in samples]) for name, samples in probes.items()]
        samples = [s for d in pool for s in d.samples]
        settings = self._settings_for(student, samples)
        questions: list[Sample | EvalItem] = self.capability_questions(probes) + list(self.target or [])
        report = score_pool(pool, student, settings, targets=self.target, attempt_questions=questions, cache=None)
        run = report.meta["run"]
        tok, att = run.get("tokens") or {}, run.get("attempts") or {}
        self.last_timing = {"tokens": tok.get("seconds"), "attempts": att.get("seconds"),
                            "seconds": round(time.perf_counter() - t0, 3), "n_traces": len(samples),
                            "n_questions": att.get("unique"), "attempt_tokens": att.get("generated_tokens"),
                            "attempt_budget": settings.attempts.max_new_tokens}
        ds = report.datasets.set_index("dataset")
        out: dict[str, float] = {}
        details: dict[str, dict[str, Any]] = {}
        for name in probes:
            row = ds.loc[name]
            out[name] = float(row["dmc"])
            details[name] = {k: _num(row[k]) for k in ("A", "Q", "C_D", "C_T", "R", "n_scored") if k in row}
            reasons = row.get("reasons")
            if isinstance(reasons, dict) and reasons.get("dmc"):
                details[name]["reason"] = reasons["dmc"]
        self.last_details = details
        return out


def _named(s: Sample, name: str) -> Sample:
    """The sample labelled with its dataset (statistics rows carry the dataset name)."""
    return s if s.dataset == name else dataclasses.replace(s, dataset=name)


def _num(x: Any) -> float | int | None:
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    if math.isnan(f):
        return None
    return int(f) if f.is_integer() and not isinstance(x, float) else f
