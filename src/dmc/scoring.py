"""Score candidate datasets against a student: the Python API behind `dmc score`.

    report = dmc.scoring.score(["data/r1.jsonl", "data/gpt4o.jsonl"], "lab-small",
                               eval_set="data/eval.jsonl", max_samples=300, out_dir="dmc-out/score")
    report.datasets   # one row per dataset, best DMC first: dmc, dmc_lo, dmc_hi, Q, A, C_D, C_T, R, rsr, ...
    report.samples    # one row per sample: m, q, c, A, w, R, rsr, ifd, ... and a *_reason where NaN

Pipeline: load → (optional) seeded subsample per dataset → token statistics and student attempts
through dmc.stats (cached on disk; a re-run reuses them) → metrics (pure functions of those
tables) → a ScoreReport, written to ``out_dir`` when given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmc.data.schema import CandidateDataset, EvalItem, Sample
from dmc.metrics import MetricSettings, ScoreReport, get_metrics, score_tables
from dmc.metrics.context import Grader

DEFAULT_CACHE = ".dmc-cache"


def default_cache_dir() -> Path:
    """``$DMC_CACHE/stats`` when DMC_CACHE is set, else ``.dmc-cache`` in the working directory."""
    base = os.environ.get("DMC_CACHE")
    return Path(base) / "stats" if base else Path(DEFAULT_CACHE)


def subsample(ds: CandidateDataset, max_samples: int | None, seed: int) -> CandidateDataset:
    """At most ``max_samples`` of ``ds`` (dmc.stats.subsample: seeded, the same questions across
    datasets that share them, in file order)."""
    from dmc.stats.subsample import subsample as _subsample

    if max_samples is None or len(ds) <= max_samples:
        return ds
    if max_samples < 1:
        raise ValueError(f"max_samples must be >= 1, got {max_samples}")
    return CandidateDataset(ds.name, _subsample(ds.samples, max_samples, seed), source=ds.source,
                            n_rejected=ds.n_rejected)


def _named(ds: CandidateDataset) -> CandidateDataset:
    """Samples carry their dataset's name (statistics rows and selection outputs use it)."""
    if all(s.dataset == ds.name for s in ds):
        return ds
    fixed = [s if s.dataset == ds.name else Sample(id=s.id, prompt=s.prompt, response=s.response, gold=s.gold,
                                                   meta=s.meta, dataset=ds.name) for s in ds]
    return CandidateDataset(ds.name, fixed, source=ds.source, n_rejected=ds.n_rejected)


def _load_pool(datasets: Any) -> tuple[list[CandidateDataset], dict[str, str]]:
    from dmc.data import load_pool

    if isinstance(datasets, CandidateDataset):
        datasets = [datasets]
    if isinstance(datasets, (str, Path)):
        datasets = [datasets]
    items = list(datasets)
    if items and all(isinstance(d, CandidateDataset) for d in items):
        pool = items
    elif items and all(isinstance(d, (str, Path)) for d in items):
        pool = load_pool(items)
    else:
        raise TypeError("datasets must be paths or CandidateDataset objects (not a mix)")
    names = [d.name for d in pool]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"two candidate datasets share the name(s) {sorted(dup)}")
    return [_named(d) for d in pool], {d.name: str(d.source) for d in pool}


def _load_student(student: Any, device: str, dtype: str) -> Any:
    if isinstance(student, (str, Path)):
        from dmc.students.loading import load_student

        return load_student(student, device=device, dtype=dtype)
    return student


def score(
    datasets: str | Path | Sequence[str | Path] | Sequence[CandidateDataset],
    student: Any,
    *,
    eval_set: str | Path | Sequence[EvalItem] | None = None,
    metrics: Sequence[str] | None = None,
    max_samples: int | None = None,
    settings: MetricSettings | None = None,
    token_settings: Any = None,
    attempt_settings: Any = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    out_dir: str | Path | None = None,
    seed: int = 0,
    device: str = "cpu",
    dtype: str = "auto",
    progress: bool = False,
    grader: Grader | None = None,
) -> ScoreReport:
    """Scores candidate datasets for ``student`` and returns a :class:`~dmc.metrics.ScoreReport`.

    datasets: files/directories (dmc.data.load_pool) or CandidateDataset objects. student: a
    dmc.students.Student or a spec for load_student (HF dir, .gguf, built-in name). eval_set: the
    target questions for C_T (file or EvalItems); None = the pool's own questions. metrics: names
    from dmc.metrics.METRICS (default: all); only the statistics they need are computed (IFD adds
    a question-free pass; capability needs the student's attempts). max_samples: per dataset, a
    seeded subsample (DMC is a dataset score: a few hundred samples suffice; see its CI).
    token_settings / attempt_settings: dmc.stats.TokenStatsSettings / AttemptSettings.
    cache_dir: the statistics cache (default ``out_dir/cache`` when out_dir is given, else
    :func:`default_cache_dir`); use_cache=False disables it.
    out_dir: also write samples.parquet, datasets.json and datasets.csv there.
    """
    from dmc.data import load_eval_set
    from dmc.stats import (
        AttemptSettings,
        StatsCache,
        TokenStatsSettings,
        compute_attempts,
        compute_token_stats,
        question_hash,
    )
    from dmc.stats.settings import settings_dict

    chosen = get_metrics(list(metrics) if metrics is not None else None)
    needs = set().union(*(m.needs for m in chosen)) if chosen else set()
    settings = settings or MetricSettings(seed=seed)
    full_pool, sources = _load_pool(datasets)
    pool = [subsample(d, max_samples, seed) for d in full_pool]
    samples = [s for d in pool for s in d]
    if not samples:
        raise ValueError("the candidate datasets hold no samples")

    evals: list[EvalItem] | None = None
    eval_source = None
    if eval_set is not None:
        if isinstance(eval_set, (str, Path)):
            eval_source = str(eval_set)
            evals = load_eval_set(eval_set)
        else:
            evals = list(eval_set)
            eval_source = "<in memory>"
    targets = [question_hash(e) for e in evals] if evals is not None else None

    stud = _load_student(student, device, dtype)
    if cache_dir is None:
        cache_dir = Path(out_dir) / "cache" if out_dir is not None else default_cache_dir()
    cache = StatsCache(Path(cache_dir)) if use_cache else None
    if token_settings is None:
        token_settings = TokenStatsSettings(with_ifd="tokens_noq" in needs)
    elif "tokens_noq" in needs and not token_settings.with_ifd:
        raise ValueError("metric 'ifd' needs TokenStatsSettings(with_ifd=True)")
    attempt_settings = attempt_settings or AttemptSettings(verifier=settings.verifier)

    tokens = attempts = None
    run: dict[str, Any] = {}
    if needs & {"tokens", "tokens_noq"}:
        tokens = compute_token_stats(stud, samples, token_settings, cache=cache, progress=progress)
        run["tokens"] = dict(tokens.attrs.get("run", {}))
    if "attempts" in needs:
        # one attempt set per distinct question: the pool's and the eval set's
        questions: list[Sample | EvalItem] = list(samples) + list(evals or [])
        attempts = compute_attempts(stud, questions, attempt_settings, cache=cache, progress=progress)
        run["attempts"] = dict(attempts.attrs.get("run", {}))

    meta = {
        "student": {"name": getattr(stud, "name", None), "fingerprint": stud.fingerprint,
                    "source": getattr(stud, "source", None)},
        "stats": {"tokens": settings_dict(token_settings) if tokens is not None else None,
                  "attempts": settings_dict(attempt_settings) if attempts is not None else None,
                  "cache": None if cache is None else str(cache.root)},
        "run": run,
        "datasets": {d.name: {"source": sources.get(d.name), "n_total": len(full), "n_scored": len(d)}
                     for d, full in zip(pool, full_pool)},
        "max_samples": max_samples,
        "seed": seed,
        "eval_set": None if evals is None else {"source": eval_source, "n_questions": len(set(targets or []))},
    }
    report = score_tables(pool, tokens, attempts, metrics=[m.name for m in chosen], settings=settings,
                          target_questions=targets, grader=grader, meta=meta)
    if out_dir is not None:
        report.write(out_dir)
    return report


def load_scores(out_dir: str | Path) -> ScoreReport:
    """Reads the files `dmc score` wrote to ``out_dir``."""
    return ScoreReport.read(out_dir)
