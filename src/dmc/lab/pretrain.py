"""`dmc lab pretrain`: pretrain a lab student on the generic lab corpus and save it as a
Hugging Face directory (weights, tokenizer with chat template, manifest of how it was made).

Deterministic for a seed on a given machine and thread count: the corpus, the initial weights
and the data order are all seeded.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from dmc.lab.accuracy import lab_accuracy
from dmc.lab.build import eval_rows
from dmc.lab.corpus import CorpusRecipe, corpus_documents, pack
from dmc.lab.registry import get_arch
from dmc.lab.tasks import TASK_FAMILIES
from dmc.lab.tokenizer import MODEL_MAX_LENGTH, build_tokenizer, save_tokenizer


@dataclass(frozen=True)
class PretrainSettings:
    steps: int
    lr: float
    batch_size: int = 16
    block_size: int = 128
    warmup_steps: int = 50
    weight_decay: float = 0.01


# One thread by default: on a shared 2-core machine, two threads per process oversubscribe the
# cores and run ~10x slower. Chosen so that each student pretrains in a few minutes on 2 CPU cores and starts with partial
# capability on the lab eval sets (see each student's manifest.json for what it reached).
DEFAULT_SETTINGS: dict[str, PretrainSettings] = {
    "lab-small": PretrainSettings(steps=3000, lr=3e-3),
    "lab-base": PretrainSettings(steps=3000, lr=3e-3),
}


class _Blocks(torch.utils.data.Dataset):
    def __init__(self, blocks: list[list[int]]):
        self.x = torch.tensor(blocks, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.x[i], "labels": self.x[i]}


class _LossLog(TrainerCallback):
    def __init__(self, log: Callable[[str], None]):
        self.losses: list[tuple[int, float]] = []
        self.log = log

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            self.losses.append((state.global_step, float(logs["loss"])))
            self.log(f"step {state.global_step}: loss {logs['loss']:.4f}")


def make_model(student: str, tokenizer: Any, seed: int) -> LlamaForCausalLM:
    arch = get_arch(student)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=MODEL_MAX_LENGTH,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **arch.llama_kwargs(),
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def _replace_dir(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)


def pretrain(
    student: str,
    out: str | Path,
    seed: int = 0,
    steps: int | None = None,
    recipe: CorpusRecipe | None = None,
    threads: int = 1,
    eval_n: int = 128,
    command: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Pretrain lab student `student` (an architecture in `dmc.lab.registry.LAB_ARCHS`) and write
    it to `out` as a complete HF directory. Returns the manifest (also in OUT/manifest.json).

    `eval_n` > 0 measures the greedy accuracy on each family's standard eval set (seed 0, first
    `eval_n` questions) and records it; 0 skips it.
    """
    base = DEFAULT_SETTINGS[get_arch(student).name]
    settings = PretrainSettings(**{**base.__dict__, "steps": steps if steps is not None else base.steps})
    recipe = recipe or CorpusRecipe()
    out = Path(out)
    torch.set_num_threads(threads)
    t0 = time.time()

    tokenizer = build_tokenizer()
    docs = corpus_documents(recipe, seed, tokenizer)
    blocks = pack(docs, tokenizer, settings.block_size)
    log(f"{student}: corpus {len(docs)} documents, {len(blocks)} blocks of {settings.block_size} tokens")
    model = make_model(student, tokenizer, seed)
    n_params = sum(p.numel() for p in model.parameters())

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        args = TrainingArguments(
            output_dir=str(tmp / "trainer"),
            max_steps=settings.steps,
            per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.lr,
            lr_scheduler_type="cosine",
            warmup_steps=min(settings.warmup_steps, max(settings.steps // 10, 1)),
            weight_decay=settings.weight_decay,
            logging_steps=max(settings.steps // 20, 1),
            save_strategy="no",
            report_to="none",
            seed=seed,
            data_seed=seed,
            use_cpu=True,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        losses = _LossLog(log)
        trainer = Trainer(model=model, args=args, train_dataset=_Blocks(blocks), callbacks=[losses])
        trainer.remove_callback(PrinterCallback)  # `losses` logs instead
        trainer.train()
        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        train_s = time.time() - t0
        last = [l for _, l in losses.losses[-3:]]
        final_loss = sum(last) / len(last) if last else float("nan")

        accuracy: dict[str, Any] = {}
        if eval_n > 0:
            for fam in TASK_FAMILIES:
                acc = lab_accuracy(model, tokenizer, fam, eval_rows(fam, eval_n, seed=0))
                accuracy[fam] = {"accuracy": acc.accuracy, "n": acc.n, "n_correct": acc.n_correct,
                                 "n_no_answer": acc.n_no_answer}
                log(f"{student}: initial accuracy on {fam} eval ({acc.n} questions): {acc.accuracy:.3f}")

        model.save_pretrained(tmp, safe_serialization=True)
        save_tokenizer(tokenizer, tmp)
        cmd = command or (f"dmc lab pretrain --student {student} --out {shlex.quote(str(out))} "
                          f"--seed {seed} --steps {settings.steps}")
        manifest = {
            "name": student,
            "kind": "dmc-lab-student",
            "architecture": "LlamaForCausalLM",
            "n_parameters": n_params,
            "config": {k: v for k, v in model.config.to_dict().items()
                       if k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                "intermediate_size", "vocab_size", "max_position_embeddings",
                                "tie_word_embeddings")},
            "seed": seed,
            "steps": settings.steps,
            "training": {**settings.__dict__, "optimizer": "adamw_torch", "schedule": "cosine",
                         "threads": threads},
            "corpus": {"recipe": recipe.to_dict(), "n_documents": len(docs), "n_blocks": len(blocks),
                       "tokens_seen": settings.steps * settings.batch_size * settings.block_size},
            "final_loss": final_loss,
            "loss_curve": losses.losses,
            "initial_accuracy": accuracy,
            "initial_accuracy_protocol": "greedy decoding, max 192 new tokens, exact lab verifier, "
                                         f"first {eval_n} questions of the seed-0 eval set",
            "command": cmd,
            "train_seconds": round(train_s, 1),
            "versions": {"torch": torch.__version__, "transformers": _version("transformers"),
                         "python": sys.version.split()[0]},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        for f in tmp.iterdir():  # mkdtemp/safetensors create owner-only files; ship them readable
            f.chmod(0o644)
        tmp.chmod(0o755)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if math.isnan(final_loss):
        log(f"{student}: no loss was logged (steps={settings.steps})")
    return manifest


def _version(pkg: str) -> str:
    from importlib.metadata import version

    return version(pkg)
