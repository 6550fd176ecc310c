"""Data strategies for distillation under one name, each turned into a curriculum callback.

- `uniform`: every row of every candidate dataset equally likely (all data mixed);
- `random-dataset`: one candidate dataset chosen at random (seeded);
- `static-dmc`: the dataset with the highest DMC on the initial student (top-1);
- `static-dmc-mix`: a fixed mixture, softmax(DMC / tau) on the initial student (`mix_policy`);
- `dynamic-dmc`: start from DMC of the whole datasets on the initial student (as `static-dmc`), then
  re-score probe subsets every `rescore_every` steps and set the mixture by `policy`;
- `schedule:A,B@120,C@0.75`: a fixed schedule of single datasets, each from its start (an optimizer
  step, or a fraction of the run) to the next one's (a curriculum by hand, or E3's hindsight oracle);
- `static:<metric>`: top-1 by any metric of dmc.metrics (`static:rsr`, `static:ifd`,
  `static:teacher-accuracy`, `static:length` ...), best = the metric's declared direction
  (higher or lower); metrics without a preferred direction take the highest value unless
  `:min` is appended (`static:length:min`).

Static scores come from `dmc.scoring.score` on the untouched student (cached on disk).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dmc.data.schema import CandidateDataset, EvalItem
from dmc.metrics import METRICS
from dmc.scoring import ScoringSettings, score
from dmc.settings import result_fields, to_dict
from dmc.curriculum.callback import DMCCurriculumCallback, MixtureCurriculum, ScheduledCurriculum
from dmc.curriculum.settings import CurriculumSettings
from dmc.curriculum.rescore import DMCRescorer
from dmc.curriculum.policies import make_policy

STRATEGIES = ("uniform", "random-dataset", "static-dmc", "static-dmc-mix", "dynamic-dmc", "static:<metric>",
              "schedule:<dataset>[,<dataset>@<start>...]")
# Bumped when a strategy's behaviour changes, so cached runs made with the old behaviour are not reused
# (2: dynamic-dmc takes its first mixture from the full initial scores; 3: probes and attempted
# questions drawn by the one seeded ordering of dmc.stats.subsample;
# 4: re-scores carry bootstrap standard errors and argmax switches only beyond them; 5: probes held
# out of training, training-pass rows from first passes only; 6: a dataset read from the training
# pass keeps its probe, whose held-out questions give C_D; 7: a single process scores the training
# pass's rows as read, not recomputed with the current weights; 8: only rows read in the last half
# interval).
STRATEGY_REVISIONS = {"dynamic-dmc": 8}


def parse_strategy(strategy: str) -> tuple[str, str | None, str | None]:
    """(kind, metric, order) with kind one of uniform, random-dataset, static-dmc, static-dmc-mix,
    dynamic-dmc, static-metric, schedule; metric and order ("max"/"min"/None) only for static-metric."""
    if strategy in ("uniform", "random-dataset", "static-dmc", "static-dmc-mix", "dynamic-dmc"):
        return strategy, None, None
    if strategy.startswith("schedule:"):
        parse_schedule(strategy)
        return "schedule", None, None
    if strategy.startswith("static:"):
        parts = strategy.split(":")
        metric = parts[1].replace("-", "_") if len(parts) > 1 else ""
        order = parts[2] if len(parts) > 2 else None
        if len(parts) > 3 or order not in (None, "max", "min"):
            raise ValueError(f"strategy {strategy!r}: expected static:<metric> or static:<metric>:max|min")
        if metric not in METRICS:
            raise ValueError(f"strategy {strategy!r}: unknown metric {parts[1]!r}; known: {', '.join(METRICS)}")
        return "static-metric", metric, order
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def curriculum_key(strategy: str, settings: CurriculumSettings) -> dict[str, Any]:
    """The curriculum settings a strategy's results depend on (for cache keys): all of them for
    dynamic-dmc, the DMC version (when not the default) for static-dmc and with the mixture policy
    for static-dmc-mix, none for the others (they never score), so changing how dynamic-dmc
    re-scores does not invalidate the static strategies' runs."""
    kind = parse_strategy(strategy)[0]
    fields = result_fields(settings)
    if kind == "dynamic-dmc":
        return fields
    version = {"metric": fields["metric"]} if "metric" in fields else {}
    if kind == "static-dmc-mix":
        return {"mix_policy": fields["mix_policy"], **version}
    if kind == "static-dmc":
        return version
    return {}


def parse_schedule(strategy: str) -> list[tuple[str, int | float]]:
    """`schedule:A,B@120,C@0.75` -> [(A, 0), (B, 120), (C, 0.75)]: each dataset from its start, an
    optimizer step (integer) or a fraction of the run (a number with a point, in [0, 1)); the first
    starts at 0 (its `@0` may be left out)."""
    body = strategy.partition(":")[2]
    usage = f"strategy {strategy!r}: expected schedule:DATASET[,DATASET@START...] with START a step or a fraction"
    phases: list[tuple[str, int | float]] = []
    for i, part in enumerate(body.split(",")):
        name, at_sep, at = part.strip().rpartition("@") if "@" in part else (part.strip(), "", "")
        if not name:
            raise ValueError(usage)
        if not at_sep:
            if i:
                raise ValueError(f"{usage}: {name!r} has no @START")
            phases.append((name, 0))
            continue
        try:
            start: int | float = float(at) if "." in at else int(at)
        except ValueError:
            raise ValueError(f"{usage}: {at!r} is not a step or a fraction") from None
        if (isinstance(start, float) and not 0.0 <= start < 1.0) or start < 0:
            raise ValueError(f"{usage}: start {at!r} must be a step >= 0 or a fraction in [0, 1)")
        phases.append((name, start))
    if phases[0][1] != 0:
        raise ValueError(f"{usage}: the first dataset starts at 0")
    return phases


def best_dataset(values: dict[str, float], metric: str, order: str | None = None) -> tuple[str, str]:
    """The best dataset by `metric` values (NaN excluded) and a note on the direction used."""
    direction = METRICS[metric].direction if metric in METRICS else "higher"
    if order is None:
        order = "min" if direction == "lower" else "max"
        note = {"higher": "higher is better", "lower": "lower is better"}.get(direction, f"{metric} has no preferred direction: highest taken")
    else:
        note = f"{order} (explicit)"
    finite = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
    if not finite:
        raise ValueError(f"no candidate dataset has a {metric} score: {values}")
    pick = (min if order == "min" else max)(finite, key=lambda k: finite[k])  # ties: first listed
    return pick, note


def _initial_scores(pool: Sequence[CandidateDataset], student, eval_items: Sequence[EvalItem] | None, metric: str,
                    scoring: ScoringSettings, cache_dir: str | Path | None, out_dir: str | Path | None,
                    progress: bool = False):
    """`dmc.scoring.score` of the pool for one metric on the current student (cached on disk)."""
    return score(list(pool), student, eval_set=list(eval_items) if eval_items else None,
                 settings=dataclasses.replace(scoring, metrics=(metric,)), cache_dir=cache_dir, out_dir=out_dir,
                 progress=progress)


def build_curriculum(
    strategy: str,
    pool: Sequence[CandidateDataset],
    student,
    *,
    eval_items: Sequence[EvalItem] | None = None,
    settings: CurriculumSettings | None = None,
    scoring: ScoringSettings | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    scores_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[MixtureCurriculum, dict[str, Any]]:
    """The curriculum callback for `strategy`, and a JSON-ready record of how it was chosen.

    Scoring strategies score the pool on `student` as it is now (call before training), under
    `scoring` (its seeds set to `seed`), through the statistics cache in `cache_dir`.
    """
    settings = settings or CurriculumSettings()
    scoring = (scoring or ScoringSettings()).with_seed(seed)
    kind, metric, order = parse_strategy(strategy)
    names = [d.name for d in pool]
    info: dict[str, Any] = {"strategy": strategy, "kind": kind, "datasets": names, "settings": settings.to_dict(),
                            "scoring": to_dict(scoring), "seed": seed}
    if kind == "uniform":
        return MixtureCurriculum(pool, None, seed=seed, reason="uniform: all candidate rows mixed"), info
    if kind == "random-dataset":
        pick = names[int(np.random.default_rng([seed, 0x5EED]).integers(len(names)))]
        info["chosen"] = pick
        return MixtureCurriculum(pool, {pick: 1.0}, seed=seed, reason=f"random-dataset: {pick}"), info
    if kind == "schedule":
        phases = parse_schedule(strategy)
        info["schedule"] = [{"dataset": n, "start": at} for n, at in phases]
        return ScheduledCurriculum(pool, phases, seed=seed, reason=strategy), info
    if kind == "dynamic-dmc":
        rescorer = DMCRescorer(eval_items, target_size=settings.target_size, capability_size=settings.capability_size,
                               max_capability_size=settings.max_capability_size,
                               attempt_budget=settings.attempt_budget, scoring=scoring, seed=seed,
                               metric=settings.metric)
        # the first mixture comes from DMC over the whole datasets on the untouched student (what
        # static-dmc uses), the later ones from probe re-scores as the student changes
        report = _initial_scores(pool, student, eval_items, settings.metric, scoring, cache_dir, scores_dir, progress)
        col = report.datasets.set_index("dataset")[settings.metric]
        initial = {n: float(col.get(n, math.nan)) for n in names}
        info["scores"] = {settings.metric: {n: (v if math.isfinite(v) else None) for n, v in initial.items()}}
        cb = DMCCurriculumCallback(pool, rescore_every=settings.rescore_every, probe_size=settings.probe_size,
                                   policy=settings.policy, switch_confidence=settings.switch_confidence,
                                   train_pass=settings.train_pass, holdout_probes=settings.holdout_probes,
                                   rescore_fn=rescorer, seed=seed, initial_scores=initial)
        return cb, info
    metric = settings.metric if kind in ("static-dmc", "static-dmc-mix") else metric
    assert metric is not None
    report = _initial_scores(pool, student, eval_items, metric, scoring, cache_dir, scores_dir, progress)
    col = report.datasets.set_index("dataset")[metric]
    values = {n: float(col.get(n, math.nan)) for n in names}
    info["scores"] = {metric: {n: (v if math.isfinite(v) else None) for n, v in values.items()}}
    if kind == "static-dmc-mix":
        decision = make_policy(settings.mix_policy).decide(names, values, None)
        mix = dict(zip(names, decision.weights))
        info["mixture"] = mix
        return MixtureCurriculum(pool, mix, seed=seed, reason=f"static-dmc-mix: {decision.reason}"), info
    pick, note = best_dataset(values, metric, order)
    info["chosen"] = pick
    info["direction"] = note
    reason = f"{strategy}: top-1 by {metric} ({note}) = {pick} ({values[pick]:.4g})"
    return MixtureCurriculum(pool, {pick: 1.0}, seed=seed, reason=reason), info
