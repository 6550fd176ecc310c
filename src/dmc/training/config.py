"""SFT settings with explicit defaults, and the bf16 "auto" decision."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from dmc.evaluation import EVAL_BATCH_SIZE, EVAL_MAX_NEW_TOKENS
from dmc.settings import SEED, check, from_dict, setting, to_dict
from dmc.students.loading import native_bf16


@dataclass
class TrainConfig:
    """Supervised fine-tuning settings.

    Full fine-tuning when `lora_r` is None; LoRA (peft) with rank `lora_r` otherwise.
    `bf16="auto"` turns on bf16 autocast where it is faster than float32: on a device with native
    bf16 (a GPU that supports it, a CPU with AVX512-BF16 or AMX) for models of >= 50M parameters.
    `eval_every` / `save_every` count optimizer steps (0 = only at the end / no checkpoints).
    """

    output_dir: str = setting("dmc-out/train", "Run directory.", result=False, cli=False)
    steps: int = setting(100, "Optimizer steps.", min=1)
    learning_rate: float = setting(2e-4, "Peak learning rate.", flag="--lr", min=1e-12)
    batch_size: int = setting(8, "Sequences per micro-batch.", min=1)
    grad_accum: int = setting(1, "Micro-batches per optimizer step.", min=1)
    max_length: int = setting(1024, "Token budget of prompt + response in training (longer responses are cut).",
                              min=2)
    seed: int = SEED.field()
    lr_scheduler: str = setting("cosine", "Learning-rate schedule (transformers' names: cosine, constant, linear ...).")
    warmup_steps: int = setting(0, "Linear warm-up steps.", min=0)
    weight_decay: float = setting(0.0, "AdamW weight decay.", min=0.0)
    max_grad_norm: float = setting(1.0, "Gradient clipping norm.", min=0.0)
    lora_r: int | None = setting(None, "LoRA rank (omit for full fine-tuning).", min=1)
    lora_alpha: int = setting(32, "LoRA alpha.", min=1)
    lora_dropout: float = setting(0.0, "LoRA dropout.", min=0.0, max=1.0)
    lora_targets: str | list[str] = setting("all-linear", "LoRA target modules: all-linear or a list of names.")
    bf16: bool | Literal["auto"] = setting("auto", "bf16 autocast: auto (where faster), true or false.")
    eval_every: int = setting(0, "Evaluate every N steps (0: only at the end).", min=0)
    eval_limit: int | None = setting(None, "Questions used by the periodic evaluations (default: all; the final "
                                     "one uses all).", min=1)
    eval_max_new_tokens: int = EVAL_MAX_NEW_TOKENS.field()
    eval_batch_size: int = EVAL_BATCH_SIZE.field()
    save_every: int = setting(0, "Checkpoint every N steps (0: none; needed to resume).", result=False, min=0)
    save_total_limit: int | None = setting(2, "Checkpoints kept.", result=False, min=1)
    logging_steps: int = setting(1, "Steps between training-loss log lines.", result=False, min=1)
    save_model: bool = setting(True, "Save the trained model under OUT/model.", result=False)
    extra: dict[str, Any] = setting(help="Passed through to transformers' TrainingArguments.", cli=False,
                                    default_factory=dict)

    def __post_init__(self) -> None:
        check(self)
        if self.bf16 not in (True, False, "auto"):
            raise ValueError(f"TrainConfig.bf16 must be true, false or auto, got {self.bf16!r}")

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return from_dict(cls, d)


# bf16 autocast only pays off once matmuls dominate: on a CPU with AVX512-BF16, a training step of
# a 0.4M / 1.3M-parameter Llama took 3.2x / 1.3x longer under bf16 autocast, a 71M one 0.6x
# (batch 8 x 128 tokens). The threshold matches the one dmc.students uses to load in bf16.
BF16_MIN_PARAMS = 50_000_000


def resolve_bf16(setting: bool | str, model) -> bool:
    """The bf16 decision for `model`: explicit True/False kept; "auto" = the model's device computes
    bf16 natively (see dmc.students.loading.native_bf16) and the model has >= 50M parameters."""
    if setting is True or setting is False:
        return setting
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    n = sum(p.numel() for p in params)
    return n >= BF16_MIN_PARAMS and native_bf16(device)
