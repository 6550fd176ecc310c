"""The student's own attempts at each question (the **attempts** table).

For each distinct question (by `question_hash`: prompt + gold, so a question shared by several
candidate datasets is attempted once), k sampled attempts with batched, KV-cached generation
(dmc.students.generation), each graded against the question's gold with dmc.grading. A question
without gold gets grade "ungradable", reason "no gold". `mean_surprisal` is the mean of -ℓ over
the attempt's own generated tokens under the student, in nats, in [0, inf); lower = the student
is more sure of its own attempt. Work is cached per question; a re-run attempts only what is
missing.
"""

from __future__ import annotations
from dmc.grading import grade_many
from dmc.students.generation import generate
from dmc.students.vllm_engine import check_engine, generate_vllm

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict

import pandas as pd
import pyarrow as pa

from dmc.data.schema import EvalItem, Sample
from dmc.stats.backend import BackendSettings, execute
from dmc.stats.cache import StatsCache, batch_key
from dmc.stats.progress import reporter
from dmc.stats.settings import ENGINE_VERSION, AttemptSettings, settings_dict
from dmc.stats.tables import ATTEMPTS_SCHEMA, rows_to_table
from dmc.stats.tokens import RunCounters

Question = Sample | EvalItem


def question_hash(q: Question) -> str:
    """`Sample.question_hash` for samples and eval items alike (prompt + gold)."""
    return q.question_hash


def questions_per_batch(settings: AttemptSettings) -> int:
    """Questions per generation call: batch_size sequences, k of them per question when sampling."""
    per_question = settings.k if settings.temperature > 0 else 1  # greedy attempts are computed once
    return max(1, settings.batch_size // per_question)


def batch_seed(seed: int, hashes: Sequence[str]) -> int:
    """The seed of one generation batch, from the run seed and the batch's questions.

    Batches get different random streams, and a batch gets the same stream whenever it is
    recomputed (a resumed run re-forms the same batches), so results do not depend on what else
    ran in the process.
    """
    digest = hashlib.sha256("|".join([str(seed), *hashes]).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _attempt_rows(student, qs: list[Question], hashes: list[str], settings: AttemptSettings) -> list[dict]:

    gen = generate_vllm if settings.engine == "vllm" else generate
    gens = gen(student, [q.prompt for q in qs], k=settings.k, temperature=settings.temperature,
                    top_p=settings.top_p, max_new_tokens=settings.max_new_tokens,
                    seed=batch_seed(settings.seed, hashes), batch_size=settings.batch_size)
    if len(gens) != len(qs) or any(len(g) != settings.k for g in gens):
        raise RuntimeError(f"generate returned {[len(g) for g in gens]} attempts for {len(qs)} questions x k={settings.k}")
    texts = [g.text for per_q in gens for g in per_q]
    golds = [q.gold for q in qs for _ in range(settings.k)]
    grades = grade_many(texts, golds, settings.verifier)
    rows = []
    for i, (q, h) in enumerate(zip(qs, hashes)):
        for a, g in enumerate(gens[i]):
            gr = grades[i * settings.k + a]
            ms = g.mean_surprisal
            rows.append({
                "question_hash": h,
                "attempt": a,
                "text": g.text,
                "answer": gr.answer,
                "grade": gr.status,
                "reason": gr.reason,
                # No generated token -> no surprisal: NaN, never 0.
                "mean_surprisal": float(ms) if ms is not None else math.nan,
                "n_tokens": len(g.token_ids),
                "truncated": bool(g.truncated),
            })
    return rows


def attempt_batch(student, batch: list[tuple[str, Question]], settings: AttemptSettings) -> pa.Table:
    """The attempts table of one batch of (question hash, question): what every backend runs."""
    return rows_to_table(_attempt_rows(student, [q for _, q in batch], [h for h, _ in batch], settings),
                         ATTEMPTS_SCHEMA)


def compute_attempts(student, questions: Sequence[Question], settings: AttemptSettings | None = None,
                     cache: StatsCache | None = None, progress: bool = True,
                     backend: BackendSettings | None = None) -> pd.DataFrame:
    """The attempts table (docs/ARCHITECTURE.md): k rows per distinct question, in first-seen order.

    Questions already attempted k times in `cache` are reused; the others are generated in batches
    of `settings.batch_size` sequences (see `questions_per_batch`), each finished batch graded and
    written to `cache` as its own shard. Processes sharing `cache` split the batches between them
    (dmc.stats.cache.claimed). `backend`: where the batches run (dmc.stats.backend).
    `df.attrs["run"]` holds the RunCounters (as a dict; counts are questions): `computed` here,
    `reused` from the cache (including what other processes wrote during the call).
    """
    settings = settings or AttemptSettings()
    check_engine(settings.engine)
    counters = RunCounters(requested=len(questions))
    fp, sh = student.fingerprint, settings.settings_hash
    unique: dict[str, Question] = {}
    for q in questions:
        unique.setdefault(question_hash(q), q)
    counters.unique = len(unique)

    tables: list[pa.Table] = []
    done: set[str] = set()
    per_q: dict[str, set[int]] = {}  # cached attempts of questions not done
    seen: set[str] = set()

    def take_in_cached() -> None:
        """Add the cached attempts of questions not done yet: at the start, and before each batch
        the ones other processes sharing the cache finished meanwhile."""
        assert cache is not None
        cached, report = cache.load("attempts", fp, sh, seen=seen)
        counters.bad_shards += report.bad_shards
        keys = zip(cached["question_hash"].to_pylist(), cached["attempt"].to_pylist())
        keep = [h in unique and h not in done and a < settings.k for h, a in keys]
        if not any(keep):
            return
        cached = cached.filter(pa.array(keep, pa.bool_()))
        tables.append(cached)
        for h, a in zip(cached["question_hash"].to_pylist(), cached["attempt"].to_pylist()):
            per_q.setdefault(h, set()).add(a)
            if len(per_q[h]) == settings.k:
                done.add(h)
                counters.reused += 1

    if cache is not None:
        take_in_cached()
        cache.describe("attempts", fp, sh, {"engine": ENGINE_VERSION, "settings": settings_dict(settings)})

    todo = [h for h in unique if h not in done]
    bs = questions_per_batch(settings)
    batches = [todo[i:i + bs] for i in range(0, len(todo), bs)]
    def needed(hs: list[str]) -> bool:
        if cache is not None:
            take_in_cached()
        return any(h not in done for h in hs)

    # The whole batch, even when another process did part of it: its random stream (batch_seed)
    # and so every attempt depend on the batch alone.
    runs = execute(batches, key=batch_key, needed=needed,
                   compute=lambda hs: attempt_batch(student, [(h, unique[h]) for h in hs], settings),
                   items=lambda hs: [(h, unique[h]) for h in hs], student=student, work=attempt_batch,
                   settings=settings, cache=cache, table="attempts", fingerprint=fp, settings_hash=sh,
                   backend=backend, progress=progress)
    with reporter("student attempts", len(todo), "questions", progress) as rep:
        for hs, t in runs:
            if t is not None and cache is not None and backend is not None and backend.is_ray:
                take_in_cached()  # a remote batch: others may have finished part of it meanwhile
                # (a local batch was checked by `needed` just before it ran)
            missing = [h for h in hs if h not in done]
            n_tok = 0
            if t is not None and missing:
                n_tok = sum(t["n_tokens"].to_pylist())
                if len(missing) < len(hs):
                    wanted = set(missing)
                    t = t.filter(pa.array([h in wanted for h in t["question_hash"].to_pylist()], pa.bool_()))
                if cache is not None:
                    seen.add(cache.write_shard("attempts", fp, sh, t).name)  # its rows are in `tables`
                tables.append(t)
                done.update(missing)
                counters.computed += len(missing)
                counters.forward_passes += 1
                counters.tokens_forwarded += n_tok
            rep.advance(len(hs), n_tok)

    allrows = pa.concat_tables(tables) if tables else ATTEMPTS_SCHEMA.empty_table()
    # A question partly cached and then recomputed has both; keep the fresh complete set.
    pos: dict[tuple[str, int], int] = {}
    for j, key in enumerate(zip(allrows["question_hash"].to_pylist(), allrows["attempt"].to_pylist())):
        pos[key] = j
    take = [pos[(h, a)] for h in unique for a in range(settings.k)]
    df = allrows.take(pa.array(take, pa.int64())).to_pandas()
    df.attrs["run"] = asdict(counters)
    return df
