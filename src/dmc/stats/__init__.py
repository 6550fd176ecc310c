"""Token statistics and student attempts, cached as Parquet shards (DESIGN.md §5).

`compute_token_stats` fills the **tokens** table (per response token: log-probability, rank,
entropy; optionally the question-free log-probabilities for IFD) and `compute_attempts` the
**attempts** table (k graded attempts per question with the student's own surprisal); both reuse
and extend a `StatsCache`; `BackendSettings` says where their batches run (here or on Ray). Schemas: docs/ARCHITECTURE.md, "Cached tables".
"""

from dmc.stats.attempts import compute_attempts, question_hash
from dmc.stats.backend import BackendSettings
from dmc.stats.cache import LoadReport, StatsCache
from dmc.stats.core import Span, SpanStats, UnsupportedModelError, plan_batches, score_batch, stats_from_logits
from dmc.stats.settings import ENGINE_VERSION, AttemptSettings, TokenStatsSettings
from dmc.stats.tables import ATTEMPTS_SCHEMA, TOKENS_SCHEMA
from dmc.stats.tokens import RunCounters, compute_token_stats

__all__ = [
    "ATTEMPTS_SCHEMA", "ENGINE_VERSION", "TOKENS_SCHEMA", "AttemptSettings", "BackendSettings", "LoadReport", "RunCounters", "Span",
    "SpanStats", "StatsCache", "TokenStatsSettings", "UnsupportedModelError", "compute_attempts",
    "compute_token_stats", "plan_batches", "question_hash", "score_batch", "stats_from_logits",
]
