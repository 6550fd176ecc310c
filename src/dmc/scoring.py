"""Score candidate datasets against a student: the one scoring path of the project.

    report = dmc.scoring.score(["data/r1.jsonl", "data/gpt4o.jsonl"], "lab-small",
                               eval_set="data/eval.jsonl", max_samples=300, out_dir="dmc-out/score")
    report.datasets   # one row per dataset, best DMC first: dmc, dmc_lo, dmc_hi, Q, A, C_D, C_T, R, rsr, ...
    report.samples    # one row per sample: m, q, c, A, w, R, rsr, ifd, ... and a *_reason where NaN

Pipeline: load → seeded subsample per dataset → token statistics and student attempts through
dmc.stats (cached on disk; a re-run reuses them) → metrics (pure functions of those tables) → a
ScoreReport. Every caller goes through :func:`compute_tables` and :func:`score_pool` under one
:class:`ScoringSettings`: `dmc score`, `dmc stats`, the curriculum's re-scorer, `dmc validate`
and the offline sweeps.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from dmc.data import FieldMap, load_eval_set, load_pool
from dmc.data.schema import CandidateDataset, EvalItem, Sample
from dmc.metrics import MetricSettings, ScoreReport, get_metrics, score_tables
from dmc.metrics.context import Grader
from dmc.settings import SEED, check, setting, to_dict
from dmc.stats import (AttemptSettings, BackendSettings, StatsCache, TokenStatsSettings, compute_attempts,
                       compute_token_stats, question_hash)
from dmc.stats.answers import answer_probes, answers_table
from dmc.stats.cost import CostPlan, plan_cost
from dmc.stats.subsample import subsample as _subsample
from dmc.stats.tokens import load_cached_tokens
from dmc.students.loading import load_student
from dmc.students.vllm_engine import check_engine

DEFAULT_CACHE = ".dmc-cache"


@dataclass(frozen=True)
class ScoringSettings:
    """Everything that decides a pool's score tables: which metrics, how many samples, and how the
    token statistics, the student's attempts and the metrics are computed."""

    metrics: tuple[str, ...] | None = setting(None, "Metrics to compute, comma-separated (default: every "
                                              "registered metric; `dmc score --help` lists them).")
    max_samples: int | None = setting(None, "Score at most N samples per dataset (seeded; the same questions "
                                      "across datasets; default: all).", min=1)
    seed: int = SEED.field()
    tokens: TokenStatsSettings = setting(help="Token statistics.", default_factory=TokenStatsSettings)
    attempts: AttemptSettings = setting(help="The student's attempts (capability).", default_factory=AttemptSettings)
    metric: MetricSettings = setting(help="The metrics' definitions.", default_factory=MetricSettings)

    def __post_init__(self) -> None:
        check(self)
        get_metrics(list(self.metrics) if self.metrics is not None else None)  # unknown names fail here

    @property
    def needs(self) -> set[str]:
        """The tables the chosen metrics read: tokens, tokens_noq (IFD), attempts, answers."""
        chosen = get_metrics(list(self.metrics) if self.metrics is not None else None)
        return set().union(*(m.needs_for(self.metric) for m in chosen)) if chosen else set()

    @property
    def token_settings(self) -> TokenStatsSettings:
        """The token statistics to compute: ``tokens``, with the question-free pass whenever a chosen
        metric (IFD) needs it."""
        if "tokens_noq" in self.needs and not self.tokens.with_ifd:
            return dataclasses.replace(self.tokens, with_ifd=True)
        return self.tokens

    @property
    def answer_token_settings(self) -> TokenStatsSettings:
        """The token statistics of the answer probes (dmc.stats.answers): the response alone."""
        return dataclasses.replace(self.tokens, with_ifd=False, turns="last")

    def with_budget(self, max_new_tokens: int) -> ScoringSettings:
        """The settings for a student that answers within ``max_new_tokens``: the metrics' generation
        budget, unless one is set. Commands that evaluate the student (`dmc validate`, `dmc distill`)
        score at their evaluation budget, since a trace that reaches its answer only after it teaches
        an answer the evaluated student never writes."""
        if self.metric.budget is not None:
            return self
        return dataclasses.replace(self, metric=dataclasses.replace(self.metric, budget=max_new_tokens))

    def with_seed(self, seed: int) -> ScoringSettings:
        """The same settings with every seed set to ``seed``."""
        return dataclasses.replace(self, seed=seed, attempts=dataclasses.replace(self.attempts, seed=seed),
                                   metric=dataclasses.replace(self.metric, seed=seed))


@dataclass
class Tables:
    """The statistics behind a score: tokens, attempts and answers tables (None when no chosen
    metric needs them) and what the run computed or reused."""

    tokens: pd.DataFrame | None
    attempts: pd.DataFrame | None
    run: dict[str, Any]
    answers: pd.DataFrame | None = None


def default_cache_dir() -> Path:
    """``$DMC_CACHE/stats`` when DMC_CACHE is set, else ``.dmc-cache`` in the working directory."""
    base = os.environ.get("DMC_CACHE")
    return Path(base) / "stats" if base else Path(DEFAULT_CACHE)


def subsample(ds: CandidateDataset, max_samples: int | None, seed: int) -> CandidateDataset:
    """At most ``max_samples`` of ``ds`` (dmc.stats.subsample: seeded, the same questions across
    datasets that share them, in file order)."""
    if max_samples is None or len(ds) <= max_samples:
        return ds
    if max_samples < 1:
        raise ValueError(f"max_samples must be >= 1, got {max_samples}")
    return CandidateDataset(ds.name, _subsample(ds.samples, max_samples, seed), source=ds.source,
                            n_rejected=ds.n_rejected)


def named(ds: CandidateDataset) -> CandidateDataset:
    """Samples carry their dataset's name (statistics rows and selection outputs use it)."""
    if all(s.dataset == ds.name for s in ds):
        return ds
    return CandidateDataset(ds.name, [dataclasses.replace(s, dataset=ds.name) for s in ds], source=ds.source,
                            n_rejected=ds.n_rejected)


def load_inputs(datasets: Any, fields: FieldMap | None = None) -> list[CandidateDataset]:
    """Candidate datasets from paths (dmc.data.load_pool, reading columns under ``fields``) or
    CandidateDataset objects, named and with distinct names."""
    if isinstance(datasets, (CandidateDataset, str, Path)):
        datasets = [datasets]
    items = list(datasets)
    if items and all(isinstance(d, CandidateDataset) for d in items):
        pool = items
    elif items and all(isinstance(d, (str, Path)) for d in items):
        pool = load_pool(items, fields=fields)
    else:
        raise TypeError("datasets must be paths or CandidateDataset objects (not a mix)")
    if not pool:
        raise ValueError("the candidate pool is empty")
    names = [d.name for d in pool]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"two candidate datasets share the name(s) {dup}")
    return [named(d) for d in pool]


def load_targets(eval_set: str | Path | Sequence[EvalItem] | None,
                 fields: FieldMap | None = None) -> tuple[list[EvalItem] | None, str | None]:
    """(eval items, where they came from) for an eval file, EvalItems or None."""
    if eval_set is None:
        return None, None
    if isinstance(eval_set, (str, Path)):
        return load_eval_set(eval_set, fields=fields), str(eval_set)
    return list(eval_set), "<in memory>"


def compute_tables(
    student: Any,
    samples: Sequence[Sample],
    settings: ScoringSettings,
    *,
    questions: Sequence[Sample | EvalItem] | None = None,
    needs: set[str] | None = None,
    cache: StatsCache | None = None,
    progress: bool = False,
    on_plan: Callable[[CostPlan], None] | None = None,
    backend: BackendSettings | None = None,
    known_tokens: pa.Table | None = None,
) -> Tables:
    """Token statistics of ``samples`` and the student's attempts at ``questions`` (default: the
    samples' own questions), each computed only when ``needs`` (default: the chosen metrics')
    asks for it, through the statistics cache when one is given. ``on_plan`` is called first
    with what will be computed and a measured estimate of its time (dmc.stats.cost). ``backend``:
    where the batches run (dmc.stats.BackendSettings; default: in this process). ``known_tokens``:
    token-statistics rows the caller already has (see dmc.stats.tokens.compute_token_stats)."""
    needs = settings.needs if needs is None else needs
    # an engine that cannot run here fails now, before the cost plan times the student
    if needs & {"tokens", "tokens_noq"}:
        check_engine(settings.token_settings.engine)
    if "attempts" in needs:
        check_engine(settings.attempts.engine)
    qs = list(samples) if questions is None else list(questions)
    probes = answer_probes(qs) if "answers" in needs else []
    if on_plan is not None:
        scored = [*samples, *probes] if needs & {"tokens", "tokens_noq"} else probes
        on_plan(plan_cost(student, scored, qs,
                          settings.token_settings if needs & {"tokens", "tokens_noq", "answers"} else None,
                          settings.attempts if "attempts" in needs else None, cache=cache))
    tokens = attempts = answers = None
    run: dict[str, Any] = {}
    if needs & {"tokens", "tokens_noq"}:
        t0 = time.perf_counter()
        tokens = compute_token_stats(student, samples, settings.token_settings, cache=cache, progress=progress,
                                     backend=backend, known=known_tokens)
        run["tokens"] = {**tokens.attrs.get("run", {}), "seconds": round(time.perf_counter() - t0, 3)}
    if "answers" in needs:
        t0 = time.perf_counter()
        probe_tokens = compute_token_stats(student, probes, settings.answer_token_settings, cache=cache,
                                           progress=progress, backend=backend)
        answers = answers_table(qs, probe_tokens)
        run["answers"] = {**probe_tokens.attrs.get("run", {}), "seconds": round(time.perf_counter() - t0, 3)}
    if "attempts" in needs:
        t0 = time.perf_counter()
        attempts = compute_attempts(student, qs, settings.attempts, cache=cache, progress=progress, backend=backend)
        run["attempts"] = {**attempts.attrs.get("run", {}), "seconds": round(time.perf_counter() - t0, 3),
                           "generated_tokens": int(attempts["n_tokens"].sum()) if len(attempts) else 0}
    return Tables(tokens, attempts, run, answers)


def cached_tables(fingerprint: str, samples: Sequence[Sample], settings: ScoringSettings,
                  cache: StatsCache, questions: Sequence[Sample | EvalItem] | None = None,
                  answers: bool | None = None) -> Tables:
    """The tables of ``samples`` (and, when ``answers`` or by default when a chosen metric needs
    them, the answers of ``questions``, default the samples' own) as far as the cache holds them, without running the student (offline sweeps): a sample or
    question missing from the cache is missing from the tables, and the metrics give it NaN with a
    reason."""
    hashes = {s.hash for s in samples}
    tok = load_cached_tokens(cache, fingerprint, settings.token_settings)[0].to_pandas()
    att = cache.load("attempts", fingerprint, settings.attempts.settings_hash)[0].to_pandas()
    tok = tok[tok["sample_hash"].isin(hashes)] if len(tok) else tok
    run = {"tokens": {"cached": len(tok)}, "attempts": {"cached": len(att)}}
    if not ("answers" in settings.needs if answers is None else answers):
        return Tables(tok, att, run)
    qs = list(samples) if questions is None else list(questions)
    probe_hashes = {p.hash for p in answer_probes(qs)}
    ptok = load_cached_tokens(cache, fingerprint, settings.answer_token_settings)[0].to_pandas()
    ptok = ptok[ptok["sample_hash"].isin(probe_hashes)] if len(ptok) else None
    table = answers_table(qs, ptok)
    run["answers"] = {"cached": int(table["gold_logprob"].notna().sum())}
    return Tables(tok, att, run, table)


def score_pool(
    pool: Sequence[CandidateDataset],
    student: Any,
    settings: ScoringSettings,
    *,
    targets: Sequence[EvalItem] | None = None,
    attempt_questions: Sequence[Sample | EvalItem] | None = None,
    cache: StatsCache | None = None,
    progress: bool = False,
    grader: Grader | None = None,
    meta: dict[str, Any] | None = None,
    on_plan: Callable[[CostPlan], None] | None = None,
    backend: BackendSettings | None = None,
) -> ScoreReport:
    """The metric tables of an already loaded pool, as given (no subsampling here).

    targets: the target questions for C_T (None = the pool's own questions). attempt_questions:
    the questions the student attempts (default: every pool question and every target).
    """
    samples = [s for d in pool for s in d]
    if not samples:
        raise ValueError("the candidate datasets hold no samples")
    questions = attempt_questions if attempt_questions is not None else [*samples, *(targets or [])]
    tables = compute_tables(student, samples, settings, questions=questions, cache=cache, progress=progress,
                            on_plan=on_plan, backend=backend)
    return report_tables(pool, student, settings, tables, targets=targets, cache=cache, grader=grader, meta=meta)


def report_tables(
    pool: Sequence[CandidateDataset],
    student: Any,
    settings: ScoringSettings,
    tables: Tables,
    *,
    targets: Sequence[EvalItem] | None = None,
    cache: StatsCache | None = None,
    grader: Grader | None = None,
    meta: dict[str, Any] | None = None,
) -> ScoreReport:
    """The metric tables of ``pool`` from its computed ``tables`` (see :func:`score_pool`), stamped
    with the student, the settings and the run's counters."""
    target_hashes = [question_hash(e) for e in targets] if targets is not None else None
    full_meta = {
        "student": {"name": getattr(student, "name", None), "fingerprint": student.fingerprint,
                    "source": getattr(student, "source", None)},
        "stats": {"tokens": to_dict(settings.token_settings) if tables.tokens is not None else None,
                  "attempts": to_dict(settings.attempts) if tables.attempts is not None else None,
                  "answers": to_dict(settings.answer_token_settings) if tables.answers is not None else None,
                  "cache": None if cache is None else str(cache.root)},
        "scoring": to_dict(settings),
        "run": tables.run,
        **(meta or {}),
    }
    names = list(settings.metrics) if settings.metrics is not None else None
    return score_tables(pool, tables.tokens, tables.attempts, metrics=names, settings=settings.metric,
                        target_questions=target_hashes, grader=grader, meta=full_meta, answers=tables.answers)


def score(
    datasets: str | Path | Sequence[str | Path] | Sequence[CandidateDataset],
    student: Any,
    *,
    eval_set: str | Path | Sequence[EvalItem] | None = None,
    settings: ScoringSettings | None = None,
    metrics: Sequence[str] | None = None,
    max_samples: int | None = None,
    seed: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    progress: bool = False,
    grader: Grader | None = None,
    fields: FieldMap | None = None,
    on_plan: Callable[[CostPlan], None] | None = None,
    backend: BackendSettings | None = None,
) -> ScoreReport:
    """Scores candidate datasets for ``student`` and returns a :class:`~dmc.metrics.ScoreReport`.

    datasets: files/directories (dmc.data.load_pool) or CandidateDataset objects. student: a
    dmc.students.Student or a spec for load_student (HF dir, .gguf, built-in name). eval_set: the
    target questions for C_T (file or EvalItems); None = the pool's own questions.
    settings: :class:`ScoringSettings` (default: the declared defaults); ``metrics``,
    ``max_samples`` and ``seed`` are shortcuts that replace those fields of it (``seed`` every
    seed). Only the statistics the chosen metrics need are computed (IFD adds a question-free
    pass; capability needs the student's attempts).
    cache_dir: the statistics cache (default ``out_dir/cache`` when out_dir is given, else
    :func:`default_cache_dir`); use_cache=False disables it.
    out_dir: also write samples.parquet, datasets.json and datasets.csv there. fields: the
    column names of the files (dmc.data.FieldMap). on_plan: called before the work with its
    plan and time estimate (:func:`compute_tables`). backend: where the statistics are computed
    (dmc.stats.BackendSettings; default: in this process).
    """
    settings = settings or ScoringSettings()
    if metrics is not None:
        settings = dataclasses.replace(settings, metrics=tuple(metrics))
    if max_samples is not None:
        settings = dataclasses.replace(settings, max_samples=max_samples)
    if seed is not None:
        settings = settings.with_seed(seed)
    full_pool = load_inputs(datasets, fields)
    pool = [subsample(d, settings.max_samples, settings.seed) for d in full_pool]
    targets, eval_source = load_targets(eval_set, fields)
    stud = load_student(student, device=device, dtype=dtype) if isinstance(student, (str, Path)) else student
    if cache_dir is None:
        cache_dir = Path(out_dir) / "cache" if out_dir is not None else default_cache_dir()
    cache = StatsCache(Path(cache_dir)) if use_cache else None
    meta = {
        "datasets": {d.name: {"source": str(d.source), "n_total": len(full), "n_scored": len(d)}
                     for d, full in zip(pool, full_pool)},
        "max_samples": settings.max_samples,
        "seed": settings.seed,
        "eval_set": None if targets is None else {"source": eval_source,
                                                  "n_questions": len({question_hash(e) for e in targets})},
    }
    report = score_pool(pool, stud, settings, targets=targets, cache=cache, progress=progress, grader=grader,
                        meta=meta, on_plan=on_plan, backend=backend)
    if out_dir is not None:
        report.write(out_dir)
    return report


def load_scores(out_dir: str | Path) -> ScoreReport:
    """Reads the files `dmc score` wrote to ``out_dir``."""
    return ScoreReport.read(out_dir)
