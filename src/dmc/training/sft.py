"""Supervised fine-tuning on `transformers.Trainer`, loss on response tokens only.

The run directory holds:

- `config.json`: the TrainConfig, the resolved bf16 decision, the student and data descriptions;
- `log.jsonl`: one JSON event per line (`train` logs from Trainer, `eval` results, curriculum
  `mixture` / `rescore` events);
- `metrics.json`: the final numbers (train loss, runtime, final eval, curriculum summary);
- `model/`: the final model as a standard Hugging Face directory (safetensors + tokenizer; LoRA
  adapters are merged into it, and the adapter alone is kept in `adapter/`);
- `checkpoints/`: Trainer checkpoints (with the curriculum state) when `save_every` > 0;
- `eval/`: per-question results of the final evaluation.

Under torchrun or accelerate launch (DDP: gloo on CPU, NCCL on GPU; `TrainConfig.batch_size` is
per process, so the global batch is batch_size x processes x grad_accum) every rank trains, and
rank 0 alone writes the run directory and evaluates; the other ranks return a TrainResult
without a final evaluation.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, IterableDataset
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging as hf_logging

from dmc.data.schema import CandidateDataset, EvalItem, Sample
from dmc.evaluation import evaluate
from dmc.training.callbacks import JsonlLogCallback, PeriodicEvalCallback
from dmc.training.collator import SFTCollator
from dmc.training.config import TrainConfig, resolve_bf16
from dmc.curriculum.callback import STATE_FILE as CURRICULUM_STATE
from dmc.curriculum.callback import MixtureCurriculum
from dmc.curriculum.rescore import distributed_world
from dmc.training.io import RunLog, atomic_write_json
from dmc.curriculum.mixture import SampleDataset


logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"  # transformers' TRAINER_STATE_NAME, written last into a checkpoint
_CHECKPOINT_RE = re.compile(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)")


@dataclass
class TrainResult:
    """What a training run produced; `final_eval` is None without eval items."""

    run_dir: Path
    model_dir: Path | None
    global_step: int
    train_loss: float
    metrics: dict[str, Any]
    final_eval: Any = None
    evals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        return self.run_dir / "log.jsonl"


def _checkpoint_problem(ckpt: Path, curriculum: bool) -> str | None:
    """Why `ckpt` cannot be resumed from, or None. Trainer writes trainer_state.json last and a
    curriculum writes its state after that (on_save), so a run killed while saving leaves a
    checkpoint without them (or with a cut trainer_state.json)."""
    try:
        json.loads((ckpt / TRAINER_STATE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{ckpt.name} is incomplete (no {TRAINER_STATE}; the run was stopped while saving it)"
    except (ValueError, UnicodeDecodeError) as e:
        return f"{ckpt.name} is incomplete ({TRAINER_STATE} is not valid JSON: {e})"
    if curriculum and not (ckpt / CURRICULUM_STATE).is_file():
        return (f"{ckpt.name} is incomplete (no curriculum state {CURRICULUM_STATE}; the run was stopped "
                "while saving it)")
    return None


def latest_complete_checkpoint(root: Path, *, curriculum: bool) -> tuple[str | None, list[str]]:
    """The newest checkpoint under `root` that can be resumed from (None if none), and why each
    newer one cannot (see `_checkpoint_problem`): a run killed while saving a checkpoint resumes
    from the one before."""
    if not root.is_dir():
        return None, []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if p.is_dir() and (m := _CHECKPOINT_RE.fullmatch(p.name))]
    skipped: list[str] = []
    for _, p in sorted(found, reverse=True):
        why = _checkpoint_problem(p, curriculum)
        if why is None:
            return str(p), skipped
        skipped.append(why)
    return None, skipped


def _as_dataset(data) -> Dataset | IterableDataset:
    if isinstance(data, (Dataset, IterableDataset)):
        return data
    if isinstance(data, CandidateDataset):
        return SampleDataset(data.samples)
    if isinstance(data, Sequence):
        if data and not isinstance(data[0], Sample):
            raise TypeError(f"training data must hold dmc Samples, got {type(data[0]).__name__}")
        return SampleDataset(data)
    raise TypeError(f"training data must be a torch Dataset/IterableDataset of Samples or a list of Samples, got {type(data).__name__}")


def _describe_data(data, curricula: list[MixtureCurriculum]) -> dict[str, Any]:
    if curricula:
        c = curricula[0]
        return {"kind": "pool", "datasets": {n: int(sum(1 for lab in c.dataset.labels if lab == k)) for k, n in enumerate(c.names)},
                "curriculum": c.kind}
    try:
        n = len(data)
    except TypeError:
        n = None
    return {"kind": type(data).__name__, "rows": n, "name": getattr(data, "name", None)}


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    # save_pretrained draws a progress bar per save; a library call should not print one.
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _wrap_lora(student, config: TrainConfig):
    from peft import LoraConfig, get_peft_model

    # The adapters' initial weights come from the global RNG, whose state at this point depends on
    # the process (imports, earlier runs in a worker); seed it so a LoRA run is a function of its seed.
    set_seed(config.seed)
    targets = config.lora_targets
    lcfg = LoraConfig(task_type="CAUSAL_LM", r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=targets)
    return get_peft_model(student.model, lcfg)


def training_arguments(config: TrainConfig, *, bf16: bool, use_cpu: bool) -> TrainingArguments:
    """The TrainingArguments a TrainConfig stands for (quiet: no reporting, no progress bars)."""
    save = config.save_every > 0
    kwargs: dict[str, Any] = dict(
        output_dir=str(config.run_dir / "checkpoints"),
        max_steps=config.steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        data_seed=config.seed,
        bf16=bf16,
        use_cpu=use_cpu,
        report_to=[],
        disable_tqdm=True,
        logging_steps=config.logging_steps,
        logging_strategy="steps",
        save_strategy="steps" if save else "no",
        save_steps=config.save_every if save else 500,
        save_total_limit=config.save_total_limit,
        eval_strategy="no",
        remove_unused_columns=False,  # rows are Sample objects; the collator builds the tensors
        dataloader_num_workers=0,
        accelerator_config={"dispatch_batches": False},
        log_level="warning",
    )
    kwargs.update(config.extra)
    return TrainingArguments(**kwargs)


def train(
    student,
    data=None,
    config: TrainConfig | None = None,
    eval_items: Sequence[EvalItem] | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    *,
    resume_from_checkpoint: str | bool | None = None,
    verifier: str = "auto",
    quiet: bool = True,
) -> TrainResult:
    """Fine-tune `student` in place on `data` (Samples; loss on response tokens) and write the run dir.

    A `MixtureCurriculum` / `DMCCurriculumCallback` among `callbacks` supplies the data (its pool)
    and the sampler; `data` may then be None. `resume_from_checkpoint` is a checkpoint path, or
    True for the latest one under the run's `checkpoints/`. With `eval_items`, accuracy is
    measured every `config.eval_every` steps and at the end (greedy pass@1, see dmc.evaluation).
    `quiet=False` keeps Trainer's own printing of the logs.
    """
    config = config or TrainConfig()
    run_dir = config.run_dir
    main = distributed_world()[0] == 0
    run_dir.mkdir(parents=True, exist_ok=True)
    log = RunLog(run_dir / "log.jsonl", enabled=main)
    curricula = [c for c in callbacks if isinstance(c, MixtureCurriculum)]
    if len(curricula) > 1:
        raise ValueError("at most one curriculum callback per run")
    if data is None:
        if not curricula:
            raise ValueError("train: no data given and no curriculum callback to supply it")
        data = curricula[0].train_dataset()
    dataset = _as_dataset(data)

    resume_path: str | None = None
    if resume_from_checkpoint:
        ckpt_root = run_dir / "checkpoints"
        incomplete: list[str] = []
        if resume_from_checkpoint is True:
            resume_path, incomplete = latest_complete_checkpoint(ckpt_root, curriculum=bool(curricula))
        else:
            resume_path = str(resume_from_checkpoint)
        if resume_path is None or not Path(resume_path).is_dir():
            raise FileNotFoundError(f"train: no checkpoint to resume from (looked for {resume_from_checkpoint!r} under {ckpt_root})"
                                    + "".join(f"; {why}" for why in incomplete))
        for why in incomplete:
            logger.warning("resuming from %s: %s", resume_path, why)
        state = json.loads((Path(resume_path) / "trainer_state.json").read_text())
        log.truncate_after(int(state["global_step"]))
        for c in curricula:
            c.resume_dir = resume_path
    else:
        log.truncate_after(-1)  # a fresh run starts a fresh log

    device = student.device
    bf16 = resolve_bf16(config.bf16, student.model)
    initial_fingerprint = student.fingerprint  # before LoRA layers are injected into the model
    model = _wrap_lora(student, config) if config.lora_r is not None else student.model
    for c in curricula:
        if c.on_event is None:
            c.on_event = log.write
        if getattr(c, "student", False) is None:
            c.student = student  # its model is (or, with LoRA, holds the adapters of) the model being trained

    args = training_arguments(config, bf16=bf16, use_cpu=device.type == "cpu")
    collator = SFTCollator(student, config.max_length)
    all_callbacks: list[TrainerCallback] = [JsonlLogCallback(log)]
    periodic = None
    if eval_items and config.eval_every > 0:
        periodic = PeriodicEvalCallback(student, eval_items, every=config.eval_every, log=log, limit=config.eval_limit,
                                        max_new_tokens=config.eval_max_new_tokens, batch_size=config.eval_batch_size,
                                        verifier=verifier)
        all_callbacks.append(periodic)
    all_callbacks.extend(callbacks)

    if main:
        atomic_write_json(run_dir / "config.json", {
            "train": config.to_dict(), "bf16_resolved": bf16, "device": str(device),
            "student": {"name": student.name, "source": getattr(student, "source", None),
                        "fingerprint": initial_fingerprint},
            "data": _describe_data(dataset, curricula),
            "lora": config.lora_r is not None, "resumed_from": resume_path, "world_size": args.world_size,
        })

    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                      processing_class=student.tokenizer, callbacks=all_callbacks)
    if quiet:
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
    for c in curricula:
        c.attach(trainer)

    t0 = time.perf_counter()
    with _no_progress_bars() if quiet else contextlib.nullcontext():
        out = trainer.train(resume_from_checkpoint=resume_path)
    train_seconds = time.perf_counter() - t0

    model_dir = None
    net = trainer.model
    if config.lora_r is not None:
        if config.save_model and main:
            net.save_pretrained(run_dir / "adapter")
        student.model = net.merge_and_unload()
    student.model.eval()
    student.refresh_fingerprint()
    if config.save_model and main:
        model_dir = run_dir / "model"
        with _no_progress_bars():
            student.model.save_pretrained(model_dir)
            student.tokenizer.save_pretrained(model_dir)

    final_eval = None
    if eval_items and main:
        final_eval = evaluate(student, list(eval_items), max_new_tokens=config.eval_max_new_tokens,
                              batch_size=config.eval_batch_size, verifier=verifier, out_dir=run_dir / "eval")
        log.write({"event": "eval", "step": out.global_step, "final": True, **final_eval.summary()})

    metrics: dict[str, Any] = {
        "global_step": out.global_step,
        "train_loss": out.training_loss,
        "train_seconds": round(train_seconds, 3),
        **{k: v for k, v in out.metrics.items()},
        "student_fingerprint_final": student.fingerprint,
        "bf16": bf16,
    }
    if final_eval is not None:
        metrics["final_eval"] = final_eval.summary()
    if periodic is not None:
        metrics["eval_seconds"] = round(periodic.seconds, 3)
    for c in curricula:
        metrics["curriculum"] = _curriculum_summary(c, train_seconds)
    if main:
        atomic_write_json(run_dir / "metrics.json", metrics)
    return TrainResult(run_dir=run_dir, model_dir=model_dir, global_step=out.global_step, train_loss=out.training_loss,
                       metrics=metrics, final_eval=final_eval, evals=list(periodic.history) if periodic else [])


def _curriculum_summary(c: MixtureCurriculum, train_seconds: float) -> dict[str, Any]:
    s: dict[str, Any] = {"kind": c.kind, "datasets": c.names, "rows_drawn": c.rows_drawn(),
                         "final_mixture": dict(zip(c.names, c.schedule.entries[-1].weights)) if c.schedule.entries else None,
                         "n_decisions": len(c.history)}
    secs = getattr(c, "rescore_seconds", None)
    if secs is not None:
        s["rescore_seconds"] = round(secs, 3)
        s["n_rescores"] = c.n_rescores
        s["rescore_fraction_of_train"] = secs / train_seconds if train_seconds > 0 else math.nan
    return s
