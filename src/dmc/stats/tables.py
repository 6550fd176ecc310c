"""Arrow schemas of the two cached tables (docs/ARCHITECTURE.md, "Cached tables").

The cache stores the tokens table without `dataset` and `sample_id`: statistics depend only on the
sample's content, so one cached row serves every dataset that holds the same sample.
"""

from __future__ import annotations

import pyarrow as pa

_I32 = pa.int32()
_F32 = pa.float32()

TOKENS_STATS_FIELDS = [
    pa.field("n_tokens", _I32, nullable=False),
    pa.field("truncated", pa.bool_(), nullable=False),
    pa.field("token_ids", pa.list_(_I32), nullable=False),
    pa.field("logprob", pa.list_(_F32), nullable=False),
    pa.field("rank", pa.list_(_I32), nullable=False),
    pa.field("entropy", pa.list_(_F32), nullable=False),
    pa.field("char_start", pa.list_(_I32), nullable=False),
    pa.field("char_end", pa.list_(_I32), nullable=False),
    pa.field("logprob_noq", pa.list_(_F32), nullable=True),
    # Earlier assistant turns (TokenStatsSettings.turns == "all"; docs/ARCHITECTURE.md): the number
    # of them (null under turns="last"), and their tokens' statistics, all turns in order in flat
    # lists (null under turns="last" or without an earlier assistant turn).
    pa.field("prev_turns", _I32, nullable=True),
    pa.field("prev_turn_tokens", pa.list_(_I32), nullable=True),
    pa.field("prev_token_ids", pa.list_(_I32), nullable=True),
    pa.field("prev_logprob", pa.list_(_F32), nullable=True),
    pa.field("prev_rank", pa.list_(_I32), nullable=True),
]

TOKENS_CACHE_SCHEMA = pa.schema([
    pa.field("sample_hash", pa.string(), nullable=False),
    pa.field("question_hash", pa.string(), nullable=False),
    *TOKENS_STATS_FIELDS,
])

TOKENS_SCHEMA = pa.schema([
    pa.field("sample_hash", pa.string(), nullable=False),
    pa.field("question_hash", pa.string(), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("sample_id", pa.string(), nullable=False),
    *TOKENS_STATS_FIELDS,
])

ATTEMPTS_SCHEMA = pa.schema([
    pa.field("question_hash", pa.string(), nullable=False),
    pa.field("attempt", _I32, nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("answer", pa.string(), nullable=True),
    pa.field("grade", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=True),
    pa.field("mean_surprisal", _F32, nullable=False),
    pa.field("n_tokens", _I32, nullable=False),
    pa.field("truncated", pa.bool_(), nullable=False),
])

# Columns that identify a cached row within one (table, student fingerprint, settings) directory.
CACHE_KEYS = {"tokens": ("sample_hash",), "attempts": ("question_hash", "attempt")}
CACHE_SCHEMAS = {"tokens": TOKENS_CACHE_SCHEMA, "attempts": ATTEMPTS_SCHEMA}
GRADES = ("correct", "wrong", "ungradable")


def rows_to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """A table with exactly `schema` from a list of row dicts (numpy arrays allowed in list cells)."""
    cols = {f.name: [r[f.name] for r in rows] for f in schema}
    return pa.Table.from_pydict(cols, schema=schema)


def empty_table(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()
