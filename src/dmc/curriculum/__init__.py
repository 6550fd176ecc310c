"""The curriculum: which candidate data the student sees as it trains.

A mixture over candidate datasets (`MixtureSampler`, `MixtureSchedule`) served to any
`transformers.Trainer` by a `TrainerCallback` (`MixtureCurriculum` for a fixed mixture,
`DMCCurriculumCallback` for the dynamic one that re-scores the datasets with the current weights),
mixture policies, and the named data strategies (`uniform`, `static-dmc`, `dynamic-dmc` ...).
Training (dmc.training) consumes it; nothing here runs a training loop.
"""

from dmc.curriculum.callback import DMCCurriculumCallback, MixtureCurriculum, RescoreFn, ScheduledCurriculum
from dmc.curriculum.mixture import MixtureSampler, MixtureSchedule, PoolDataset, SampleDataset
from dmc.curriculum.policies import ArgmaxPolicy, ProportionalPolicy, SoftmaxPolicy, make_policy
from dmc.curriculum.rescore import DMCRescorer
from dmc.curriculum.settings import CurriculumSettings
from dmc.curriculum.strategies import STRATEGIES, build_curriculum, parse_strategy

__all__ = [
    "STRATEGIES", "ArgmaxPolicy", "CurriculumSettings", "DMCCurriculumCallback", "DMCRescorer", "MixtureCurriculum",
    "MixtureSampler", "MixtureSchedule", "PoolDataset", "ProportionalPolicy", "RescoreFn", "SampleDataset", "ScheduledCurriculum",
    "SoftmaxPolicy", "build_curriculum", "make_policy", "parse_strategy",
]
