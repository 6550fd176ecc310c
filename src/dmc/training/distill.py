"""Distillation with a data strategy: choose the curriculum, train, evaluate (the API behind `dmc distill`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from transformers import TrainerCallback

from dmc.curriculum.rescore import distributed_world
from dmc.curriculum.strategies import CurriculumSettings, build_curriculum
from dmc.data.schema import CandidateDataset, EvalItem
from dmc.scoring import ScoringSettings
from dmc.training.config import TrainConfig
from dmc.training.io import atomic_write_json
from dmc.training.sft import TrainResult, train


def distill(
    pool: Sequence[CandidateDataset],
    student,
    eval_items: Sequence[EvalItem] | None,
    *,
    strategy: str = "dynamic-dmc",
    config: TrainConfig | None = None,
    settings: CurriculumSettings | None = None,
    scoring: ScoringSettings | None = None,
    cache_dir: str | Path | None = None,
    resume_from_checkpoint: str | bool | None = None,
    verifier: str = "auto",
    quiet: bool = True,
    progress: bool = False,
    callbacks: Sequence[TrainerCallback] = (),
) -> TrainResult:
    """Train `student` on the pool under `strategy` (see dmc.curriculum.strategies) and evaluate it.

    Writes `strategy.json` (how the data was chosen, with the static scores) next to the run's
    config, log and metrics; static scores are also written under `scores/`. On resume the
    strategy is rebuilt the same way (static scores come from the statistics cache).
    """
    config = config or TrainConfig()
    settings = settings or CurriculumSettings()
    scoring = (scoring or ScoringSettings()).with_budget(config.eval_max_new_tokens)
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    # Under torchrun every rank builds the same curriculum (ranks sharing `cache_dir` split the
    # static scoring between them, see dmc.stats.cache.claimed); rank 0 writes the files.
    main = distributed_world()[0] == 0
    curriculum, info = build_curriculum(strategy, pool, student, eval_items=eval_items, settings=settings,
                                        scoring=scoring, seed=config.seed, cache_dir=cache_dir,
                                        scores_dir=run_dir / "scores" if main else None, progress=progress and main)
    if main:
        atomic_write_json(run_dir / "strategy.json", info)
    result = train(student, None, config, eval_items=eval_items, callbacks=[curriculum, *callbacks],
                   resume_from_checkpoint=resume_from_checkpoint, verifier=verifier, quiet=quiet)
    result.metrics["strategy"] = strategy
    if main:
        atomic_write_json(run_dir / "metrics.json", result.metrics)
    return result
