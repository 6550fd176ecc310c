"""SFT on transformers' Trainer (loss on response tokens only), plain or with a curriculum from
dmc.curriculum supplying the data (`distill`: a named data strategy, then training)."""

from dmc.training.callbacks import JsonlLogCallback, PeriodicEvalCallback, StopAtStep
from dmc.training.collator import IGNORE_INDEX, SFTCollator
from dmc.training.config import TrainConfig, resolve_bf16
from dmc.training.distill import distill
from dmc.training.sft import TrainResult, train, training_arguments

__all__ = [
    "IGNORE_INDEX", "JsonlLogCallback", "PeriodicEvalCallback", "SFTCollator", "StopAtStep", "TrainConfig",
    "TrainResult", "distill", "resolve_bf16", "train", "training_arguments",
]
