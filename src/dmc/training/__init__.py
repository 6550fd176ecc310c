"""SFT on transformers' Trainer (loss on response tokens only) and the DMC curriculum:
a mixture sampler plus a TrainerCallback that re-scores candidate datasets during training."""

from dmc.training.callbacks import JsonlLogCallback, PeriodicEvalCallback, StopAtStep
from dmc.training.collator import IGNORE_INDEX, SFTCollator
from dmc.training.config import TrainConfig, resolve_bf16
from dmc.training.curriculum import DMCCurriculumCallback, MixtureCurriculum
from dmc.training.distill import distill
from dmc.training.mixture import MixtureSampler, MixtureSchedule, PoolDataset, SampleDataset
from dmc.training.policies import ArgmaxPolicy, ProportionalPolicy, SoftmaxPolicy, make_policy
from dmc.training.rescore import DMCRescorer
from dmc.training.sft import TrainResult, train, training_arguments
from dmc.training.strategies import STRATEGIES, CurriculumSettings, build_curriculum, parse_strategy

__all__ = [
    "IGNORE_INDEX",
    "STRATEGIES",
    "ArgmaxPolicy",
    "CurriculumSettings",
    "DMCCurriculumCallback",
    "DMCRescorer",
    "JsonlLogCallback",
    "MixtureCurriculum",
    "MixtureSampler",
    "MixtureSchedule",
    "PeriodicEvalCallback",
    "PoolDataset",
    "ProportionalPolicy",
    "SFTCollator",
    "SampleDataset",
    "SoftmaxPolicy",
    "StopAtStep",
    "TrainConfig",
    "TrainResult",
    "build_curriculum",
    "distill",
    "make_policy",
    "parse_strategy",
    "resolve_bf16",
    "train",
    "training_arguments",
]
