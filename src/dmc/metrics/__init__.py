"""DMC and baseline metrics: pure functions of the cached token-statistics and attempts tables.

Every metric declares name, version, direction and range and is registered in ``METRICS``;
``score_tables`` runs any subset and returns a :class:`ScoreReport`.
"""

# Import order is registration order: DMC v1, DMC v2, then the baselines.
from dmc.metrics import dmc_v1 as _dmc_v1  # noqa: F401,I001
from dmc.metrics import dmc_v2 as _dmc_v2  # noqa: F401,I001
from dmc.metrics import baselines as _baselines  # noqa: F401
from dmc.metrics.base import METRICS, Metric, MetricResult, get_metrics, register
from dmc.metrics.context import DmcGrader, Grader, ScoringContext, question_hash, samples_frame
from dmc.metrics.dmc_v1 import bootstrap_dmc, bootstrap_replicates, difficulty_match
from dmc.metrics.results import ScoreReport, directions_footer, dmc_score, score_tables
from dmc.metrics.settings import MetricSettings
from dmc.metrics.spans import CONTENT_SELECTORS, content_token_mask, find_spans, novel_spans

__all__ = [
    "CONTENT_SELECTORS", "METRICS", "DmcGrader", "Grader", "Metric", "MetricResult", "MetricSettings",
    "ScoreReport", "ScoringContext", "bootstrap_dmc", "bootstrap_replicates", "content_token_mask", "difficulty_match",
    "directions_footer", "dmc_score", "find_spans", "get_metrics", "novel_spans",
    "question_hash", "register", "samples_frame", "score_tables",
]
