"""SFT settings with explicit defaults, and the bf16 "auto" decision."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch


@dataclass
class TrainConfig:
    """Supervised fine-tuning settings.

    Full fine-tuning when `lora_r` is None; LoRA (peft) with rank `lora_r` otherwise.
    `bf16="auto"` turns on bf16 autocast where it is faster than float32: on a device with native
    bf16 (a GPU that supports it, a CPU with AVX512-BF16 or AMX) for models of >= 50M parameters.
    `eval_every` / `save_every` count optimizer steps (0 = only at the end / no checkpoints).
    """

    output_dir: str = "dmc-out/train"
    steps: int = 100
    learning_rate: float = 2e-4
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 1024
    seed: int = 0
    lr_scheduler: str = "cosine"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_r: int | None = None
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: str | list[str] = "all-linear"
    bf16: bool | Literal["auto"] = "auto"
    eval_every: int = 0
    eval_limit: int | None = None  # questions used by periodic evals (None = all); the final eval uses all
    eval_max_new_tokens: int = 256
    eval_batch_size: int = 16
    save_every: int = 0
    save_total_limit: int | None = 2
    logging_steps: int = 1
    save_model: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # passed through to TrainingArguments

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "max_length", "logging_steps", "eval_batch_size", "eval_max_new_tokens"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "save_every", "warmup_steps"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"TrainConfig.learning_rate must be > 0, got {self.learning_rate}")
        if self.lora_r is not None and self.lora_r < 1:
            raise ValueError(f"TrainConfig.lora_r must be >= 1 or None (full fine-tuning), got {self.lora_r}")
        if self.bf16 not in (True, False, "auto"):
            raise ValueError(f"TrainConfig.bf16 must be True, False or 'auto', got {self.bf16!r}")

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}")
        return cls(**d)


# bf16 autocast only pays off once matmuls dominate: on a CPU with AVX512-BF16, a training step of
# a 0.4M / 1.3M-parameter Llama took 3.2x / 1.3x longer under bf16 autocast, a 71M one 0.6x
# (batch 8 x 128 tokens). The threshold matches the one dmc.students uses to load in bf16.
BF16_MIN_PARAMS = 50_000_000


def resolve_bf16(setting: bool | str, model) -> bool:
    """The bf16 decision for `model`: explicit True/False kept; "auto" = the model's device computes
    bf16 natively (see dmc.students.loading.native_bf16) and the model has >= 50M parameters."""
    if setting is True or setting is False:
        return setting
    from dmc.students.loading import native_bf16

    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    n = sum(p.numel() for p in params)
    return n >= BF16_MIN_PARAMS and native_bf16(device)
