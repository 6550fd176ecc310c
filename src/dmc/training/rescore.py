"""The default re-scorer of the dynamic curriculum: DMC v1 of each probe subset under the current
weights, from the statistics engine (`dmc.stats`) and metric code (`dmc.metrics`) behind
`dmc score` / `dmc.scoring.score`.

Each call computes, without the disk cache (the weights are new at every call):

- token statistics of every probe trace (alignment A and quality q need them);
- the student's own attempts (capability) at `capability_size` probe questions per dataset and at
  `target_size` target questions (C_T). Questions are picked by the same seeded question rank as
  the probes, so datasets that share questions share attempts;

then DMC per dataset (range [0, 1], higher = more compatible; NaN with a reason when a dataset has
no scorable sample). Attempts are the costly part: their token budget defaults to 1.5 x the
longest probe trace (in the student's tokens), capped by `AttemptSettings.max_new_tokens`, since
an attempt that runs far past every teacher trace has lost its way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from dmc.data.schema import CandidateDataset, EvalItem, Sample


class DMCRescorer:
    """`rescore_fn` computing DMC v1 per dataset; `last_details` holds the components of the last call.

    target: the target questions (the eval set) for C_T; None = the probe questions themselves.
    target_size / capability_size: questions attempted per call for C_T / per dataset for C_D
    (None = all). attempt_budget: "auto" (see the module docstring) or a fixed max_new_tokens.
    """

    def __init__(
        self,
        target: Sequence[EvalItem] | None = None,
        *,
        target_size: int | None = 16,
        capability_size: int | None = 8,
        attempt_budget: int | str = "auto",
        token_settings=None,
        attempt_settings=None,
        metric_settings=None,
        seed: int = 0,
    ):
        from dmc.metrics import MetricSettings
        from dmc.stats import AttemptSettings, question_hash
        from dmc.training.curriculum import question_rank

        if attempt_budget != "auto" and (not isinstance(attempt_budget, int) or attempt_budget < 1):
            raise ValueError(f"attempt_budget must be 'auto' or a positive int, got {attempt_budget!r}")
        self.token_settings = token_settings  # None: chosen per device at the first call
        # One generation batch holds every attempt of a call at the default sizes (throughput only).
        self.attempt_settings = attempt_settings or AttemptSettings(batch_size=64)
        # The interval is not used to pick a mixture; skipping the bootstrap keeps re-scoring cheap.
        self.metric_settings = metric_settings or MetricSettings(n_boot=0)
        self.attempt_budget = attempt_budget
        self.capability_size = capability_size
        self.seed = seed
        items = list(target) if target is not None else None
        if items is not None and target_size is not None and len(items) > target_size:
            items = sorted(items, key=lambda it: question_rank(question_hash(it), seed))[:target_size]
        self.target = items
        self._budget: int | None = None
        self.last_timing: dict[str, Any] = {}
        self.last_details: dict[str, dict[str, Any]] = {}

    def _token_settings(self, student):
        from dmc.stats import TokenStatsSettings

        if self.token_settings is None:
            # On a CPU, small padded batches score short traces faster (throughput only; results are
            # unchanged): 176 lab traces took 1.1 s with 2048 tokens per batch, 1.9 s with 8192.
            cpu = student.device.type == "cpu"
            self.token_settings = TokenStatsSettings(batch_tokens=2048) if cpu else TokenStatsSettings()
        return self.token_settings

    def _attempt_settings(self, student, samples: Sequence[Sample]):
        if self.attempt_budget != "auto":
            return replace(self.attempt_settings, max_new_tokens=int(self.attempt_budget))
        if self._budget is None:  # fixed at the first call: the probes never change
            longest = max((len(student.encode(s.prompt, s.response).response_ids) for s in samples), default=1)
            self._budget = max(1, min(self.attempt_settings.max_new_tokens, math.ceil(1.5 * longest) + 1))
        return replace(self.attempt_settings, max_new_tokens=self._budget)

    def capability_questions(self, probes: Mapping[str, list[Sample]]) -> list[Sample]:
        """The probe samples whose questions are attempted: the first `capability_size` questions of
        each dataset by question rank (shared questions are attempted once)."""
        from dmc.training.curriculum import question_rank

        out: list[Sample] = []
        for samples in probes.values():
            qs = sorted({s.question_hash: s for s in samples}.items(), key=lambda kv: question_rank(kv[0], self.seed))
            out.extend(s for _, s in (qs if self.capability_size is None else qs[: self.capability_size]))
        return out

    def __call__(self, student, probes: Mapping[str, list[Sample]]) -> dict[str, float]:
        from dmc.metrics import dmc_score
        from dmc.stats import compute_attempts, compute_token_stats, question_hash

        t0 = time.perf_counter()
        pool = [CandidateDataset(name, [_named(s, name) for s in samples]) for name, samples in probes.items()]
        samples = [s for d in pool for s in d.samples]
        tokens = compute_token_stats(student, samples, self._token_settings(student), cache=None, progress=False)
        t1 = time.perf_counter()
        questions: list[Sample | EvalItem] = self.capability_questions(probes) + list(self.target or [])
        attempt_settings = self._attempt_settings(student, samples)
        attempts = compute_attempts(student, questions, attempt_settings, cache=None, progress=False)
        t2 = time.perf_counter()
        target_q = [question_hash(t) for t in self.target] if self.target is not None else None
        report = dmc_score(pool, tokens, attempts, settings=self.metric_settings, target_questions=target_q)
        self.last_timing = {"tokens": round(t1 - t0, 3), "attempts": round(t2 - t1, 3),
                            "metrics": round(time.perf_counter() - t2, 3), "n_traces": len(samples),
                            "n_questions": int(attempts["question_hash"].nunique()) if len(attempts) else 0,
                            "attempt_tokens": int(attempts["n_tokens"].sum()) if len(attempts) else 0,
                            "attempt_budget": attempt_settings.max_new_tokens}
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
    if s.dataset == name:
        return s
    return Sample(id=s.id, prompt=s.prompt, response=s.response, gold=s.gold, meta=s.meta, dataset=name)


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
