"""The default re-scorer of the dynamic curriculum: DMC of each probe subset under the current
weights, through the one scoring path (`dmc.scoring.score_pool`, the one behind `dmc score`).

Each call computes, without the disk cache (the weights are new at every call):

- token statistics of every probe trace (alignment A and quality q need them);
- the student's own attempts (capability) at `capability_size` probe questions per dataset and at
  `target_size` target questions (C_T). Questions are picked by the same seeded question rank as
  the probes, so datasets that share questions share attempts;

then DMC per dataset (range [0, 1], higher = more compatible; NaN with a reason when a dataset has
no scorable sample). When the policy finds a switch undecided (`refine`), more probe questions of
the contenders are attempted and the same tables scored again: a sequential test that spends
attempts only on the decisions that need them. Under torchrun / accelerate launch (a torch.distributed process group) each
rank computes its share of the statistics and attempts, every rank gathers all of them, and so
every rank gets the same scores (and applies the same mixture). Attempts are the costly part: their token budget defaults to 1.5 x the
longest probe trace (in the student's tokens), capped by the attempts' `max_new_tokens`, since
an attempt that runs far past every teacher trace has lost its way.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import torch.distributed as dist

from dmc.curriculum.observe import Observed
from dmc.curriculum.settings import CurriculumSettings
from dmc.data.schema import CandidateDataset, EvalItem, Sample
from dmc.scoring import ScoringSettings, Tables, compute_tables, report_tables
from dmc.stats import question_hash
from dmc.stats.attempts import questions_per_batch
from dmc.stats.subsample import seeded_order
from dmc.stats.tokens import max_length_for


def rescore_settings(scoring: ScoringSettings, device_type: str, metric: str = "dmc") -> ScoringSettings:
    """The settings of a re-score: the curriculum's DMC version (``metric``) only, with its bootstrap over probe samples (the standard
    errors the policy weighs a switch against), attempts in one generation batch and, on a CPU, small padded scoring batches
    (throughput only; results are unchanged: 176 lab traces took 1.1 s with 2048 tokens per batch,
    1.9 s with 8192)."""
    tokens = dataclasses.replace(scoring.tokens, batch_tokens=2048) if device_type == "cpu" else scoring.tokens
    # The model being trained lives in memory, where the vllm engine (which loads weights from
    # the student's source) cannot see it: re-scores always run on transformers.
    return dataclasses.replace(scoring, metrics=(metric,), tokens=dataclasses.replace(tokens, engine="transformers"),
                               attempts=dataclasses.replace(scoring.attempts, batch_size=64, engine="transformers"))


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of this process: torch.distributed's once a process group is up, else the
    RANK / WORLD_SIZE that torchrun and accelerate launch set (a trainer starts the group later)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _block(n: int, rank: int, world: int) -> slice:
    """Rank `rank`'s contiguous share of n items (shares differ by at most one)."""
    return slice(n * rank // world, n * (rank + 1) // world)


def _merge_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ranks' run counters as one: counts add up, seconds are the slowest rank's (they ran at once)."""
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        for table, counters in run.items():
            into = out.setdefault(table, {})
            for k, v in counters.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    into[k] = max(into.get(k, 0), v) if k == "seconds" else into.get(k, 0) + v
    return out


def _concat(parts: Sequence[pd.DataFrame | None]) -> pd.DataFrame | None:
    if parts[0] is None:
        return None
    full = [p for p in parts if p is not None and len(p)]
    return pd.concat(full, ignore_index=True) if full else parts[0]


def rescore_tables(student, samples: Sequence[Sample], questions: Sequence[Sample | EvalItem],
                   settings: ScoringSettings, known: pa.Table | None = None, needs: set[str] | None = None) -> Tables:
    """`compute_tables` of `samples` and `questions` (no disk cache), split across the ranks of a
    torch.distributed process group when there is one: each rank takes a contiguous block of the
    samples and a block of whole generation batches of the distinct questions (so each attempt gets
    the random stream a single process gives it, see dmc.stats.attempts.batch_seed), then every
    rank gathers all blocks, in rank order: the rows a single process computes, in its order."""
    rank, world = distributed_world()
    if world == 1 or not dist.is_initialized():
        return compute_tables(student, samples, settings, questions=questions, needs=needs, cache=None,
                              known_tokens=known)
    unique: dict[str, Sample | EvalItem] = {}
    for q in questions:
        unique.setdefault(question_hash(q), q)
    per_batch = questions_per_batch(settings.attempts)
    batches = _block(math.ceil(len(unique) / per_batch), rank, world)
    mine = compute_tables(student, list(samples)[_block(len(samples), rank, world)], settings,
                          questions=list(unique.values())[batches.start * per_batch:batches.stop * per_batch],
                          needs=needs, cache=None, known_tokens=known)
    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, (mine.tokens, mine.attempts, mine.run, mine.answers))
    return Tables(_concat([p[0] for p in parts]), _concat([p[1] for p in parts]), _merge_run([p[2] for p in parts]),
                  _concat([p[3] for p in parts]))


@dataclasses.dataclass
class _Last:
    """What the last call scored, kept so that `refine` can add attempts and score again."""

    pool: list[CandidateDataset]
    probes: Mapping[str, list[Sample]]
    settings: ScoringSettings
    tables: Tables
    attempted: set[str]  # question hashes attempted (or whose answers were scored) in this re-score
    extra: dict[str, list[Sample]]
    counts: dict[str, int | None]  # each dataset's first questions by rank attempted (None = all)


class DMCRescorer:
    """`rescore_fn` computing DMC per dataset; `last_details` holds the components of the last call.

    target: the target questions (the eval set) for C_T; None = the probe questions themselves.
    target_size / capability_size: questions attempted per call for C_T / per dataset for C_D
    (None = all). max_capability_size: how far `refine` may grow a dataset's questions (None = its
    whole probe). attempt_budget: "auto" (see the module docstring) or a fixed max_new_tokens.
    scoring: the scoring settings (metric definitions, statistics, attempts) of every re-score.
    metric: the DMC version computed (dmc or dmc_v2; CurriculumSettings.metric).
    """

    def __init__(
        self,
        target: Sequence[EvalItem] | None = None,
        *,
        target_size: int | None = CurriculumSettings.target_size,
        capability_size: int | None = CurriculumSettings.capability_size,
        max_capability_size: int | None = CurriculumSettings.max_capability_size,
        attempt_budget: int | str = CurriculumSettings.attempt_budget,
        scoring: ScoringSettings | None = None,
        seed: int = 0,
        metric: str = CurriculumSettings.metric,
    ):
        if attempt_budget != "auto" and (not isinstance(attempt_budget, int) or attempt_budget < 1):
            raise ValueError(f"attempt_budget must be 'auto' or a positive int, got {attempt_budget!r}")
        self.scoring = scoring or ScoringSettings()
        self.metric = metric
        self.attempt_budget = attempt_budget
        self.capability_size = capability_size
        self.max_capability_size = max_capability_size
        self.seed = seed
        items = list(target) if target is not None else None
        if items is not None and target_size is not None and len(items) > target_size:
            items = seeded_order(items, question_hash, seed)[:target_size]
        self.target = items
        self._settings: ScoringSettings | None = None  # fixed at the first call: the probes never change
        self._last: _Last | None = None
        self.last_timing: dict[str, Any] = {}
        self.last_details: dict[str, dict[str, Any]] = {}

    def _settings_for(self, student, samples: Sequence[Sample]) -> ScoringSettings:
        if self._settings is None:
            s = rescore_settings(self.scoring, student.device.type, self.metric)
            budget = self.attempt_budget
            if budget == "auto":
                longest = max((len(student.encode(x.prompt, x.response).response_ids) for x in samples), default=1)
                budget = max(1, min(s.attempts.max_new_tokens, math.ceil(1.5 * longest) + 1))
            self._settings = dataclasses.replace(s, attempts=dataclasses.replace(s.attempts, max_new_tokens=int(budget)))
        return self._settings

    def _ranked(self, samples: Sequence[Sample]) -> list[Sample]:
        """One sample per distinct question, in the seeded question rank every re-score uses."""
        return [s for _, s in seeded_order({s.question_hash: s for s in samples}.items(), lambda kv: kv[0], self.seed)]

    def capability_questions(self, probes: Mapping[str, list[Sample]]) -> list[Sample]:
        """The probe samples whose questions are attempted: the first `capability_size` questions of
        each dataset by question rank (shared questions are attempted once)."""
        return [s for samples in probes.values() for s in self._ranked(samples)[: self.capability_size]]

    def training_samples(self, student, probes: Mapping[str, list[Sample]], settings: ScoringSettings,
                         observed: Observed | None) -> dict[str, list[Sample]]:
        """Per dataset, the training pass's samples it is scored on besides its probe: those the
        callback handed over (first passes of the last half interval) that the statistics engine
        would encode alike, when there are at least as many as the probe has; else none. The probe
        always stays: its questions are the ones attempted, so C_D is measured on held-out questions."""
        tokens = settings.token_settings
        if observed is None or tokens.turns != "last":
            return {name: [] for name in probes}
        limit = max_length_for(student, tokens)
        out: dict[str, list[Sample]] = {}
        for name, probe in probes.items():
            seen, in_probe = observed.samples.get(name, {}), {s.hash for s in probe}
            # in a fixed order (pass step, then hash), whichever rank saw them: the bootstrap resamples by position
            usable = [seen[h] for h in sorted(seen, key=lambda h: (observed.steps[h], h))
                      if observed.lengths[h] <= limit and h not in in_probe]
            out[name] = usable if len(usable) >= max(1, len(probe)) else []
        return out

    def __call__(self, student, probes: Mapping[str, list[Sample]], observed: Observed | None = None) -> dict[str, float]:
        t0 = time.perf_counter()
        settings = self._settings_for(student, [s for p in probes.values() for s in p])
        extra = self.training_samples(student, probes, settings, observed)
        pool = [CandidateDataset(name, [_named(s, name) for s in (*probe, *extra[name])])
                for name, probe in probes.items()]
        samples = [s for d in pool for s in d.samples]
        questions: list[Sample | EvalItem] = self.capability_questions(probes) + list(self.target or [])
        from_training = {s.hash for ss in extra.values() for s in ss}
        known = observed.table(from_training) if observed is not None and from_training else None
        tables = rescore_tables(student, samples, questions, settings, known)
        self._last = _Last(pool, probes, settings, tables, {question_hash(q) for q in questions}, extra,
                           {name: self.capability_size for name in probes})
        run = tables.run
        tok, att, ans = run.get("tokens") or {}, run.get("attempts") or {}, run.get("answers") or {}
        self.last_timing = {"tokens": tok.get("seconds"), "attempts": att.get("seconds"), "answers": ans.get("seconds"),
                            "n_traces": len(samples), "n_training_pass": len(from_training),
                            "n_questions": att.get("unique"), "attempt_tokens": att.get("generated_tokens"),
                            "attempt_budget": settings.attempts.max_new_tokens, "refinements": 0}
        return self._scores(student, t0)

    def refine(self, student, datasets: Sequence[str]) -> dict[str, float] | None:
        """More evidence for an undecided decision between `datasets`: each one's questions attempted
        (C_D) are doubled, up to `max_capability_size` and its probe's questions; only questions not
        yet attempted in this re-score are attempted, and the last call's tables are scored again.
        Returns the new scores, or None when no dataset can grow (the evidence is all there is)."""
        last = self._last
        if last is None:
            raise RuntimeError("refine() needs a re-score first: call the re-scorer, then refine")
        t0 = time.perf_counter()
        new: list[Sample] = []
        grown = False
        for name in datasets:
            have, ranked = last.counts[name], self._ranked(last.probes[name])
            most = len(ranked) if self.max_capability_size is None else min(len(ranked), self.max_capability_size)
            if have is None or have >= most:
                continue
            last.counts[name] = min(most, 2 * have)
            new += [q for q in ranked[have:last.counts[name]] if q.question_hash not in last.attempted]
            grown = True
        if not grown:
            return None
        if new:  # shared questions among them are attempted once (as in every re-score)
            needs = last.settings.needs & {"attempts", "answers"}
            more = rescore_tables(student, [], new, last.settings, needs=needs)
            last.tables = Tables(last.tables.tokens, _concat([last.tables.attempts, more.attempts]), last.tables.run,
                                 _concat([last.tables.answers, more.answers]))
            last.attempted |= {q.question_hash for q in new}
            att = more.run.get("attempts") or {}
            timing = self.last_timing
            timing["attempts"] = _add(timing.get("attempts"), att.get("seconds"))
            timing["answers"] = _add(timing.get("answers"), (more.run.get("answers") or {}).get("seconds"))
            timing["n_questions"] = _add(timing.get("n_questions"), att.get("unique"))
            timing["attempt_tokens"] = _add(timing.get("attempt_tokens"), att.get("generated_tokens"))
        self.last_timing["refinements"] += 1
        seconds = self.last_timing["seconds"]
        return self._scores(student, t0, seconds)

    def _scores(self, student, t0: float, before: float = 0.0) -> dict[str, float]:
        """DMC per dataset from the last call's tables (and `last_details`, `last_timing`)."""
        last = self._last
        assert last is not None
        report = report_tables(last.pool, student, last.settings, last.tables, targets=self.target)
        self.last_timing["seconds"] = round(before + time.perf_counter() - t0, 3)
        ds = report.datasets.set_index("dataset")
        out: dict[str, float] = {}
        details: dict[str, dict[str, Any]] = {}
        m = self.metric
        for name, probe in last.probes.items():
            row = ds.loc[name]
            out[name] = float(row[m])
            details[name] = {k: _num(row[k]) for k in ("A", "Q", "C_D", "C_T", "R", "R2", "logit_gap", "n_scored")
                             if k in row}
            # the bounds and standard error under the names the callback reads, whichever version
            details[name].update({f"dmc_{k}": _num(row[f"{m}_{k}"]) for k in ("lo", "hi", "se") if f"{m}_{k}" in row})
            details[name]["n_questions"] = len({s.question_hash for s in probe} & last.attempted)
            details[name]["source"] = "probe + training pass" if last.extra[name] else "probe"
            reasons = row.get("reasons")
            if isinstance(reasons, dict) and reasons.get(m):
                details[name]["reason"] = reasons[m]
        self.last_details = details
        return out


def _add(a: float | int | None, b: float | int | None) -> float | int | None:
    """a + b where either may be missing (None)."""
    if a is None or b is None:
        return b if a is None else a
    return round(a + b, 3) if isinstance(a, float) or isinstance(b, float) else a + b


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
