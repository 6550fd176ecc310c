"""Token statistics of candidate samples under a student (the **tokens** table).

For each sample: one forward pass of the student over the templated (prompt, response), and for
each response token its log-probability, rank and entropy (see dmc.stats.core for definitions,
directions and ranges); with `with_ifd`, also the log-probabilities of the response scored
without its question (`logprob_noq`); with `turns="all"`, also the log-probabilities and ranks of
the earlier assistant turns of the conversation (`prev_*`, from the same forward pass). Work is
cached per sample content hash, so a sample shared by several datasets is scored once, and a
re-run only scores what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from dmc.data.schema import Sample
from dmc.stats.backend import BackendSettings, execute
from dmc.stats.cache import StatsCache, batch_key
from dmc.stats.core import Span, SpanStats, plan_batches, score_batch
from dmc.stats.progress import reporter
from dmc.stats.settings import ENGINE_VERSION, TokenStatsSettings, settings_dict
from dmc.stats.tables import TOKENS_CACHE_SCHEMA, TOKENS_SCHEMA, rows_to_table
from dmc.students.vllm_engine import check_engine, span_stats_vllm


@dataclass
class RunCounters:
    """What one call did: rows requested, distinct work items, how many came from the cache and
    how many were computed now, forward passes run and tokens forwarded."""

    requested: int = 0
    unique: int = 0
    reused: int = 0
    computed: int = 0
    forward_passes: int = 0
    tokens_forwarded: int = 0
    bad_shards: list[str] = field(default_factory=list)


def _where(s: Sample) -> str:
    return f"dataset {s.dataset!r}, sample {s.id!r}"


@dataclass(frozen=True)
class _Compact:
    """An Encoded held as int32 arrays: all pending samples are encoded before scoring starts, and
    Python int lists would take ~9x the memory."""

    input_ids: np.ndarray
    response_start: int
    response_end: int
    truncated: bool
    offsets: np.ndarray  # [n, 2]
    prev_spans: np.ndarray | None = None  # [k, 2]: earlier assistant turns' token ranges (turns="all")


def max_length_for(student, settings: TokenStatsSettings) -> int:
    """The scoring budget: the setting, or by default the student's whole context."""
    return settings.max_length if settings.max_length is not None else student.context_length


def _encode(student, s: Sample, max_length: int, all_turns: bool = False) -> _Compact:
    try:
        if all_turns:
            enc = student.encode(s.prompt, s.response, max_length=max_length, all_turns=True)
        else:
            enc = student.encode(s.prompt, s.response, max_length=max_length)
    except Exception as e:
        raise ValueError(f"{_where(s)}: cannot encode it for the student: {e}") from e
    n = enc.response_end - enc.response_start
    if n > 0 and enc.response_start < 1:
        raise ValueError(f"{_where(s)}: the templated conversation starts with a response token; "
                         "nothing precedes it to predict it from")
    if len(enc.offsets) != n:
        raise ValueError(f"{_where(s)}: encoder returned {len(enc.offsets)} offsets for {n} response tokens")
    prev = np.asarray(enc.prev_spans, dtype=np.int32).reshape(-1, 2) if all_turns else None
    if prev is not None and ((prev[:, 1] > prev[:, 0]) & (prev[:, 0] < 1)).any():
        raise ValueError(f"{_where(s)}: the templated conversation starts with an assistant token; "
                         "nothing precedes it to predict it from")
    return _Compact(np.asarray(enc.input_ids, dtype=np.int32), enc.response_start, enc.response_end,
                    bool(enc.truncated), np.asarray(enc.offsets, dtype=np.int32).reshape(-1, 2), prev)


def _encode_noq(student, s: Sample, max_length: int):
    try:
        return student.encode_response_only(s.response, max_length=max_length)
    except Exception as e:
        raise ValueError(f"{_where(s)}: cannot encode its response alone for the student: {e}") from e


def _noq_logprobs(enc, stats, main_ids: np.ndarray) -> np.ndarray:
    """logprob_noq for one sample, aligned to the main encoding's tokens where they agree.

    A response-only encoding whose first response token is at position 0 cannot score that token:
    it gets NaN. When the main encoding was truncated (the question took room), the response-only
    scores are cut to the same tokens.
    """
    lp = np.full(enc.response_end - enc.response_start, np.nan, dtype=np.float32)
    if stats is not None:
        lp[len(lp) - len(stats.logprob):] = stats.logprob
    ids = np.asarray(enc.input_ids[enc.response_start:enc.response_end], dtype=np.int32)
    n = len(main_ids)
    if len(lp) > n and np.array_equal(ids[:n], main_ids):
        lp = lp[:n]
    return lp


def _noq_span(enc) -> Span | None:
    start = max(enc.response_start, 1)
    if enc.response_end <= start:
        return None
    return Span(enc.input_ids, start, enc.response_end)


_NO_PREV = {"prev_turns": None, "prev_turn_tokens": None, "prev_token_ids": None, "prev_logprob": None,
            "prev_rank": None}


def _all_turns_span(e: _Compact) -> Span | None:
    """One span from the first earlier assistant token to the response's end, so every assistant
    turn is scored in the sample's one forward pass (the tokens between are scored and dropped)."""
    ranges = [(int(a), int(b)) for a, b in e.prev_spans if b > a] if e.prev_spans is not None else []
    if e.response_end > e.response_start:
        ranges.append((e.response_start, e.response_end))
    if not ranges:
        return None
    return Span(e.input_ids, min(a for a, _ in ranges), max(b for _, b in ranges))


def _cut(st: SpanStats, a: int, b: int) -> SpanStats:
    return SpanStats(st.token_ids[a:b], st.logprob[a:b], st.rank[a:b], st.entropy[a:b])


def _split_turns(e: _Compact, span: Span | None, st: SpanStats | None) -> tuple[SpanStats | None, dict]:
    """The response's statistics and the prev_* columns, from the statistics of `_all_turns_span`."""
    s0 = span.start if span is not None else 0
    main = None
    if st is not None and e.response_end > e.response_start:
        main = _cut(st, e.response_start - s0, e.response_end - s0)
    k = 0 if e.prev_spans is None else len(e.prev_spans)
    if k == 0:
        return main, {**_NO_PREV, "prev_turns": 0}
    parts = [_cut(st, a - s0, b - s0) for a, b in e.prev_spans if b > a] if st is not None else []
    return main, {
        "prev_turns": k,
        "prev_turn_tokens": (e.prev_spans[:, 1] - e.prev_spans[:, 0]).astype(np.int32),
        "prev_token_ids": np.concatenate([p.token_ids for p in parts] or [np.zeros(0, np.int32)]),
        "prev_logprob": np.concatenate([p.logprob for p in parts] or [np.zeros(0, np.float32)]),
        "prev_rank": np.concatenate([p.rank for p in parts] or [np.zeros(0, np.int32)]),
    }


def _score_spans(model, spans: list[Span | None], settings: TokenStatsSettings, pad_id: int, counters: RunCounters):
    """score_batch over the non-empty spans; None where there is nothing to score."""
    live = [i for i, sp in enumerate(spans) if sp is not None]
    out: list = [None] * len(spans)
    if live:
        if settings.engine == "vllm":
            res = [SpanStats(**d) for d in span_stats_vllm(model, [(spans[i].input_ids, spans[i].start, spans[i].end)
                                                                   for i in live])]
        else:
            res = score_batch(model, [spans[i] for i in live], chunk_elements=settings.chunk_elements, pad_id=pad_id)
        counters.forward_passes += 1
        counters.tokens_forwarded += sum(len(spans[i].input_ids) for i in live)
        for i, r in zip(live, res):
            out[i] = r
    return out


def _pad_id(student) -> int:
    tok = getattr(student, "tokenizer", None)
    for name in ("pad_token_id", "eos_token_id"):
        v = getattr(tok, name, None)
        if isinstance(v, int):
            return v
    return 0  # masked out by the attention mask; any valid id works


def _score_batch_rows(student, batch: list[Sample], encs: list, settings: TokenStatsSettings,
                      counters: RunCounters) -> list[dict]:
    model, pad_id = student.model, _pad_id(student)
    if settings.turns == "all":
        spans = [_all_turns_span(e) for e in encs]
    else:
        spans = [Span(e.input_ids, e.response_start, e.response_end) if e.response_end > e.response_start else None
                 for e in encs]
    main = _score_spans(model, spans, settings, pad_id, counters)
    prev = [_NO_PREV] * len(batch)
    if settings.turns == "all":
        main, prev = map(list, zip(*(_split_turns(e, sp, st) for e, sp, st in zip(encs, spans, main))))
    noq: list = [None] * len(batch)
    noq_encs: list = [None] * len(batch)
    if settings.with_ifd:
        noq_encs = [_encode_noq(student, s, max_length_for(student, settings)) for s in batch]
        noq = _score_spans(model, [_noq_span(e) for e in noq_encs], settings, pad_id, counters)
    rows = []
    empty_f, empty_i = np.zeros(0, np.float32), np.zeros(0, np.int32)
    for j, (s, e) in enumerate(zip(batch, encs)):
        st = main[j]
        ids = st.token_ids if st is not None else empty_i
        offs = e.offsets
        rows.append({
            "sample_hash": s.hash,
            "question_hash": s.question_hash,
            "n_tokens": len(ids),
            "truncated": bool(e.truncated),
            "token_ids": ids,
            "logprob": st.logprob if st is not None else empty_f,
            "rank": st.rank if st is not None else empty_i,
            "entropy": st.entropy if st is not None else empty_f,
            "char_start": offs[:, 0],
            "char_end": offs[:, 1],
            "logprob_noq": _noq_logprobs(noq_encs[j], noq[j], ids) if settings.with_ifd else None,
            **prev[j],
        })
    return rows


def encode_sample(student, s: Sample, settings: TokenStatsSettings) -> _Compact:
    """``s`` as the statistics engine encodes it under ``settings`` (input ids, response span, truncated)."""
    return _encode(student, s, max_length_for(student, settings), settings.turns == "all")


def token_batch(student, batch: list[Sample], settings: TokenStatsSettings, encs: list | None = None):
    """(cache table, forward passes, tokens forwarded) of one batch: what every backend runs."""
    if encs is None:
        encs = [encode_sample(student, s, settings) for s in batch]
    counters = RunCounters()
    rows = _score_batch_rows(student, batch, encs, settings, counters)
    return rows_to_table(rows, TOKENS_CACHE_SCHEMA), counters.forward_passes, counters.tokens_forwarded


def load_cached_tokens(cache: StatsCache, fingerprint: str, settings: TokenStatsSettings,
                       seen: set[str] | None = None) -> tuple[pa.Table, list[str]]:
    """The token rows ``cache`` holds for this student under ``settings``, and the unreadable shards.

    Rows computed with the question-free pass hold every column of rows computed without it, so a
    request without IFD also reads them, with ``logprob_noq`` null (`dmc stats --ifd`, then a score
    that needs no IFD). ``seen``: as :meth:`StatsCache.load`.
    """
    table, report = cache.load("tokens", fingerprint, settings.settings_hash, seen=seen)
    bad = list(report.bad_shards)
    if settings.with_ifd:
        return table, bad
    extra, report = cache.load("tokens", fingerprint, replace(settings, with_ifd=True).settings_hash, seen=seen)
    bad += report.bad_shards
    have = set(table["sample_hash"].to_pylist())
    extra = extra.filter(pa.array([h not in have for h in extra["sample_hash"].to_pylist()], pa.bool_()))
    if not extra.num_rows:
        return table, bad
    at = extra.schema.get_field_index("logprob_noq")
    noq = extra.schema.field(at)
    return pa.concat_tables([table, extra.set_column(at, noq, pa.nulls(extra.num_rows, noq.type))]), bad


def compute_token_stats(student, samples: Sequence[Sample], settings: TokenStatsSettings | None = None,
                        cache: StatsCache | None = None, progress: bool = True,
                        backend: BackendSettings | None = None, known: pa.Table | None = None) -> pd.DataFrame:
    """The tokens table (docs/ARCHITECTURE.md) for `samples`, one row per sample in order.

    Cached rows are reused; missing ones are computed in length-bucketed batches, each finished
    batch written to `cache` as its own shard before the next starts. Processes sharing `cache`
    split the batches between them (dmc.stats.cache.claimed). `backend` says where the batches
    run (dmc.stats.backend: here, or on Ray workers; the same batches and shards either way).
    `df.attrs["run"]` holds the
    RunCounters of the call (as a dict): `computed` samples were scored here, `reused` read from
    the cache (including rows other processes wrote during the call); `computed == 0` and
    `forward_passes == 0` on a full hit. `known`: rows (TOKENS_CACHE_SCHEMA) the caller already
    has for some of the samples under these settings, e.g. read from a training forward pass
    (dmc.curriculum.observe); they are used as cached rows are, and counted as `reused`.
    """
    settings = settings or TokenStatsSettings()
    check_engine(settings.engine)
    counters = RunCounters(requested=len(samples))
    fp, sh = student.fingerprint, settings.settings_hash
    unique: dict[str, Sample] = {}
    for s in samples:
        unique.setdefault(s.hash, s)
    counters.unique = len(unique)

    tables: list[pa.Table] = []
    done: set[str] = set()
    seen: set[str] = set()

    def take_in_cached() -> None:
        """Add the cached rows of samples not done yet: at the start, and before each batch the
        rows other processes sharing the cache finished meanwhile."""
        assert cache is not None
        cached, bad = load_cached_tokens(cache, fp, settings, seen=seen)
        counters.bad_shards += bad
        keep = [h in unique and h not in done for h in cached["sample_hash"].to_pylist()]
        if any(keep):
            cached = cached.filter(pa.array(keep, pa.bool_()))
            tables.append(cached)
            new = cached["sample_hash"].to_pylist()
            done.update(new)
            counters.reused += len(new)

    if known is not None and known.num_rows:
        keep = [h in unique and h not in done for h in known["sample_hash"].to_pylist()]
        given = known.select(TOKENS_CACHE_SCHEMA.names).cast(TOKENS_CACHE_SCHEMA).filter(pa.array(keep, pa.bool_()))
        hashes = given["sample_hash"].to_pylist()
        if len(set(hashes)) != len(hashes):
            raise ValueError("known token statistics hold a sample twice")
        tables.append(given)
        done.update(hashes)
        counters.reused += len(hashes)
    if cache is not None:
        take_in_cached()
        cache.describe("tokens", fp, sh, {"engine": ENGINE_VERSION, "settings": settings_dict(settings)})

    todo = [s for h, s in unique.items() if h not in done]
    encs = []
    with reporter("encoding", len(todo), "samples", progress) as rep:
        for s in todo:
            encs.append(encode_sample(student, s, settings))
            rep.advance(1, len(encs[-1].input_ids))
    batches = plan_batches([len(e.input_ids) for e in encs], settings.batch_tokens)

    def needed(idx: list[int]) -> bool:
        if cache is not None:
            take_in_cached()
        return any(todo[i].hash not in done for i in idx)

    # The whole batch, even when another process did part of it: a sample's numbers then never
    # depend on which process computed what.
    runs = execute(batches, key=lambda idx: batch_key(todo[i].hash for i in idx), needed=needed,
                   compute=lambda idx: token_batch(student, [todo[i] for i in idx], settings, [encs[i] for i in idx]),
                   items=lambda idx: [todo[i] for i in idx], student=student, work=token_batch, settings=settings,
                   cache=cache, table="tokens", fingerprint=fp, settings_hash=sh, backend=backend, progress=progress)
    with reporter("token statistics", len(todo), "samples", progress) as rep:
        for idx, result in runs:
            if result is not None and cache is not None and backend is not None and backend.is_ray:
                take_in_cached()  # a remote batch: others may have finished part of it meanwhile
                # (a local batch was checked by `needed` just before it ran)
            missing = [i for i in idx if todo[i].hash not in done]
            if result is not None and missing:
                t, passes, forwarded = result
                counters.forward_passes += passes
                counters.tokens_forwarded += forwarded
                if len(missing) < len(idx):
                    wanted = {todo[i].hash for i in missing}
                    t = t.filter(pa.array([h in wanted for h in t["sample_hash"].to_pylist()], pa.bool_()))
                if cache is not None:
                    seen.add(cache.write_shard("tokens", fp, sh, t).name)  # its rows are in `tables`
                tables.append(t)
                done.update(todo[i].hash for i in missing)
                counters.computed += len(missing)
            rep.advance(len(idx), sum(len(encs[i].input_ids) for i in idx))

    allrows = pa.concat_tables(tables) if tables else TOKENS_CACHE_SCHEMA.empty_table()
    pos = {h: i for i, h in enumerate(allrows["sample_hash"].to_pylist())}
    out = allrows.take(pa.array([pos[s.hash] for s in samples], pa.int64()))
    out = out.add_column(2, "dataset", pa.array([s.dataset for s in samples], pa.string()))
    out = out.add_column(3, "sample_id", pa.array([str(s.id) for s in samples], pa.string()))
    out = out.cast(TOKENS_SCHEMA)
    df = out.to_pandas()
    df.attrs["run"] = asdict(counters)
    return df
