"""`dmc train` (plain SFT on one dataset) and `dmc distill` (SFT on a pool under a data strategy)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dmc.cli.app import app
from dmc.cli.evaluate import eval_table, load_eval_or_exit, load_student_or_exit


def _bf16(value: str) -> bool | str:
    v = value.lower()
    if v == "auto":
        return "auto"
    if v in ("on", "true", "1", "yes"):
        return True
    if v in ("off", "false", "0", "no"):
        return False
    raise typer.BadParameter(f"expected auto, on or off, got {value!r}", param_hint="--bf16")


def _config(out: Path, steps: int, lr: float, batch_size: int, grad_accum: int, max_length: int, seed: int,
            lora_r: int | None, lora_alpha: int, bf16: str, eval_every: int, eval_limit: int | None,
            eval_max_new_tokens: int, save_every: int):
    from dmc.training import TrainConfig

    try:
        return TrainConfig(output_dir=str(out), steps=steps, learning_rate=lr, batch_size=batch_size, grad_accum=grad_accum,
                           max_length=max_length, seed=seed, lora_r=lora_r, lora_alpha=lora_alpha, bf16=_bf16(bf16),
                           eval_every=eval_every, eval_limit=eval_limit, eval_max_new_tokens=eval_max_new_tokens,
                           save_every=save_every)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _progress(console: Console, steps: int):
    """A callback printing the loss about 20 times per run (the library itself prints nothing)."""
    from transformers import TrainerCallback

    every = max(1, steps // 20)

    class _Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs and (state.global_step % every == 0 or state.global_step == state.max_steps):
                console.print(f"step {state.global_step}/{state.max_steps}  loss {logs['loss']:.4f}")

    return _Progress()


def _report(console: Console, result, title: str) -> None:
    t = Table(title=title)
    t.add_column("")
    t.add_column("value", justify="right")
    t.add_row("optimizer steps", str(result.global_step))
    t.add_row("mean train loss", f"{result.train_loss:.4f}")
    t.add_row("train seconds", f"{result.metrics.get('train_seconds', float('nan')):.1f}")
    cur = result.metrics.get("curriculum")
    if cur:
        t.add_row("rows drawn per dataset", ", ".join(f"{k}={v}" for k, v in cur["rows_drawn"].items()))
        if "rescore_seconds" in cur:
            t.add_row("re-scores (seconds, share of training)",
                      f"{cur['n_rescores']} ({cur['rescore_seconds']:.1f} s, {100 * cur['rescore_fraction_of_train']:.1f}%)")
    console.print(t)
    if result.final_eval is not None:
        console.print(eval_table(result.final_eval, "final evaluation"))
    console.print(f"run directory: {result.run_dir} (config.json, log.jsonl, metrics.json"
                  + (", model/" if result.model_dir else "") + ")")


_STEPS = typer.Option(100, "--steps", help="Optimizer steps.")
_LR = typer.Option(2e-4, "--lr", help="Peak learning rate (cosine schedule).")
_BS = typer.Option(8, "--batch-size", help="Sequences per micro-batch.")
_GA = typer.Option(1, "--grad-accum", help="Micro-batches per optimizer step.")
_MAXLEN = typer.Option(1024, "--max-length", help="Token budget of prompt + response (longer responses are cut).")
_SEED = typer.Option(0, "--seed")
_LORA_R = typer.Option(None, "--lora-r", help="LoRA rank (omit for full fine-tuning).")
_LORA_A = typer.Option(32, "--lora-alpha", help="LoRA alpha.")
_BF16 = typer.Option("auto", "--bf16", help="bf16 autocast: auto (where faster), on, off.")
_EVAL_EVERY = typer.Option(0, "--eval-every", help="Evaluate every N steps (0: only at the end).")
_EVAL_LIMIT = typer.Option(None, "--eval-limit", help="Questions used by the periodic evaluations (the final one uses all).")
_EVAL_TOKENS = typer.Option(256, "--eval-max-new-tokens", help="Generation budget per eval answer.")
_SAVE_EVERY = typer.Option(0, "--save-every", help="Checkpoint every N steps (0: none; needed for --resume).")
_RESUME = typer.Option(False, "--resume", help="Resume from the latest checkpoint in OUT/checkpoints.")
_DEVICE = typer.Option("cpu", "--device", help="cpu or cuda.")
_DTYPE = typer.Option("float32", "--dtype", help="Weights dtype when loading the student (float32 keeps full-precision master weights).")
_VERIFIER = typer.Option("auto", "--verifier", help="Answer verifier for evaluation and scoring.")


@app.command("train")
def train_cmd(
    data: Path = typer.Argument(..., help="One dataset file (.jsonl/.json/.parquet) of teacher traces."),
    student: str = typer.Option(..., "--student", help="Student: a Hugging Face directory, a .gguf file, or a built-in name."),
    out: Path = typer.Option(..., "--out", help="Run directory."),
    eval_set: Path | None = typer.Option(None, "--eval", help="Eval set for periodic and final accuracy."),
    steps: int = _STEPS, lr: float = _LR, batch_size: int = _BS, grad_accum: int = _GA, max_length: int = _MAXLEN,
    seed: int = _SEED, lora_r: int | None = _LORA_R, lora_alpha: int = _LORA_A, bf16: str = _BF16,
    eval_every: int = _EVAL_EVERY, eval_limit: int | None = _EVAL_LIMIT, eval_max_new_tokens: int = _EVAL_TOKENS,
    save_every: int = _SAVE_EVERY, resume: bool = _RESUME, device: str = _DEVICE, dtype: str = _DTYPE,
    verifier: str = _VERIFIER,
) -> None:
    """Plain SFT of STUDENT on DATA (loss on the response tokens), saving a Hugging Face model in OUT/model."""
    from dmc.data import DataError, load_dataset
    from dmc.training import train

    console = Console()
    try:
        ds = load_dataset(data)
    except (DataError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    items = load_eval_or_exit(eval_set, console) if eval_set else None
    cfg = _config(out, steps, lr, batch_size, grad_accum, max_length, seed, lora_r, lora_alpha, bf16, eval_every,
                  eval_limit, eval_max_new_tokens, save_every)
    stud = load_student_or_exit(student, device=device, dtype=dtype, console=console)
    try:
        res = train(stud, ds, cfg, eval_items=items, resume_from_checkpoint=True if resume else None, verifier=verifier,
                    callbacks=[_progress(console, steps)])
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    _report(console, res, f"SFT of {stud.name} on {ds.name}")


@app.command("distill")
def distill_cmd(
    pool: list[Path] = typer.Argument(..., help="Candidate dataset files or directories (each file is one dataset)."),
    student: str = typer.Option(..., "--student", help="Student: a Hugging Face directory, a .gguf file, or a built-in name."),
    eval_set: Path = typer.Option(..., "--eval", help="Eval set: the target questions and the final accuracy."),
    out: Path = typer.Option(..., "--out", help="Run directory."),
    strategy: str = typer.Option("dynamic-dmc", "--strategy", help="uniform, random-dataset, static-dmc, static-dmc-mix, dynamic-dmc, or static:<metric> (static:rsr, static:ifd, static:teacher-accuracy, static:length ...)."),
    rescore_every: int = typer.Option(200, "--rescore-every", help="dynamic-dmc: steps between re-scores."),
    probe_size: int = typer.Option(16, "--probe-size", help="dynamic-dmc: samples per dataset re-scored."),
    policy: str = typer.Option("argmax", "--policy", help="dynamic-dmc mixture policy: argmax[:min_dwell], softmax[:tau], proportional."),
    mix_policy: str = typer.Option("softmax", "--mix-policy", help="static-dmc-mix: softmax[:tau] or proportional."),
    max_samples: int | None = typer.Option(256, "--max-samples", help="Static strategies: samples per dataset scored."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Statistics cache (default: see `dmc score`)."),
    steps: int = _STEPS, lr: float = _LR, batch_size: int = _BS, grad_accum: int = _GA, max_length: int = _MAXLEN,
    seed: int = _SEED, lora_r: int | None = _LORA_R, lora_alpha: int = _LORA_A, bf16: str = _BF16,
    eval_every: int = _EVAL_EVERY, eval_limit: int | None = _EVAL_LIMIT, eval_max_new_tokens: int = _EVAL_TOKENS,
    save_every: int = _SAVE_EVERY, resume: bool = _RESUME, device: str = _DEVICE, dtype: str = _DTYPE,
    verifier: str = _VERIFIER,
) -> None:
    """Distill into STUDENT from a pool of candidate datasets under a data strategy, then evaluate."""
    from dmc.data import DataError, load_pool
    from dmc.training import CurriculumSettings, distill, parse_strategy

    console = Console()
    try:
        parse_strategy(strategy)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--strategy") from None
    try:
        candidates = load_pool(pool)
    except (DataError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    items = load_eval_or_exit(eval_set, console)
    cfg = _config(out, steps, lr, batch_size, grad_accum, max_length, seed, lora_r, lora_alpha, bf16, eval_every,
                  eval_limit, eval_max_new_tokens, save_every)
    settings = CurriculumSettings(rescore_every=rescore_every, probe_size=probe_size, policy=policy, mix_policy=mix_policy,
                                  score_max_samples=max_samples, cache_dir=str(cache_dir) if cache_dir else None)
    stud = load_student_or_exit(student, device=device, dtype=dtype, console=console)
    try:
        res = distill(candidates, stud, items, strategy=strategy, config=cfg, settings=settings,
                      resume_from_checkpoint=True if resume else None, verifier=verifier,
                      callbacks=[_progress(console, steps)])
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    _report(console, res, f"distillation of {stud.name}, strategy {strategy}")
