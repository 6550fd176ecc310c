"""`dmc validate`: E1 (metric vs post-training accuracy), E2 (static selection), E3 (curricula)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer
from rich.console import Console

from dmc.cli.app import app


def _csv(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _ints(value: str, option: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {value!r}", param_hint=option) from None
    if not out:
        raise typer.BadParameter("at least one value is needed", param_hint=option)
    return out


def print_headline(console: Console, result) -> None:
    """E1's correlations (best predictor first), E2's selectors and E3's strategies, as tables."""
    from rich.table import Table

    from dmc.validation.correlation import fmt_rho

    if result.e1:
        t = Table(title="E1: Spearman ρ of each metric with post-training accuracy (best predictor first)")
        for col in ("metric", "direction", "ρ [95% CI]", "signed ρ", "n"):
            t.add_column(col)
        for r in result.e1["headline"]:
            signed = r["signed"]
            t.add_row(r["metric"], r["direction"], fmt_rho(r["rho"], r["lo"], r["hi"]),
                      "n/a" if signed != signed else f"{signed:+.2f}", str(r["n"]))
        console.print(t)
    if result.e2:
        t = Table(title="E2: accuracy when each metric chooses the data")
        for col in ("selector", "chosen", "accuracy"):
            t.add_column(col)
        for s in result.e2["selectors"]:
            acc = s.get("accuracy")
            t.add_row(s["metric"], ", ".join(s.get("chosen") or []) or str(s.get("error")),
                      "n/a" if acc is None or acc != acc else f"{100 * acc:.1f}%")
        console.print(t)
    if result.e3:
        t = Table(title=f"E3: curricula, {result.e3.get('steps')} steps each")
        for col in ("strategy", "final accuracy"):
            t.add_column(col)
        for name, st in result.e3["strategies"].items():
            acc = st.get("final_accuracy")
            t.add_row(name, "n/a" if acc is None or acc != acc else f"{100 * acc:.1f}%")
        console.print(t)


def _quiet_hub_bars() -> None:
    """transformers' per-file load/save bars would scroll through the live pilot display."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


@app.command("validate")
def validate_cmd(
    pool: list[Path] = typer.Argument(..., help="Candidate dataset files or directories (each file is one dataset)."),
    student: str = typer.Option(..., "--student", help="Student: a built-in name, a Hugging Face directory or a .gguf file."),
    eval_set: Path = typer.Option(..., "--eval", help="Eval set (questions with gold answers)."),
    out: Path = typer.Option(..., "--out", help="Run directory: e1.json, e2.json, e3.json, scores/, pilots/ (the cache)."),
    experiments: str = typer.Option("e1,e2,e3", "--experiments", help="Comma-separated subset of e1,e2,e3."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated pilot seeds (E1/E2/E3 each run once per seed)."),
    steps: int = typer.Option(240, "--steps", min=1, help="Optimizer steps of every pilot (the equal budget)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Sequences per step."),
    lr: float = typer.Option(3e-3, "--lr", help="Learning rate (constant schedule)."),
    lora_r: int | None = typer.Option(None, "--lora-r", help="LoRA rank for the pilots (omit for full fine-tuning)."),
    max_length: int = typer.Option(512, "--max-length", min=2, help="Token budget of prompt + response."),
    eval_max_new_tokens: int = typer.Option(128, "--eval-max-new-tokens", min=1, help="Generation budget per eval answer."),
    pilot_samples: int | None = typer.Option(192, "--pilot-samples", min=1, help="Samples per dataset every pilot draws from."),
    max_samples: int | None = typer.Option(192, "--max-samples", min=1, help="Samples per dataset scored for the metrics."),
    metrics: str | None = typer.Option(None, "--metrics", help="Comma-separated metrics (default: all registered)."),
    n_boot: int = typer.Option(1000, "--n-boot", min=0, help="Bootstrap resamples of the correlation CIs."),
    e2_policy: str = typer.Option("top1", "--e2-policy", help="Selection policy of E2 (top1, topk:K, mix:softmax, samples:top-fraction ...)."),
    e3_strategies: str = typer.Option("uniform,static-dmc,dynamic-dmc", "--e3-strategies", help="dmc.training strategies compared in E3."),
    e3_steps: int | None = typer.Option(None, "--e3-steps", min=1, help="Steps of each E3 run (default: --steps)."),
    e3_eval_every: int | None = typer.Option(None, "--e3-eval-every", min=1, help="Steps between accuracy measurements in E3 (default: steps/4)."),
    rescore_every: int = typer.Option(60, "--rescore-every", min=1, help="dynamic-dmc: steps between re-scores."),
    probe_size: int = typer.Option(16, "--probe-size", min=1, help="dynamic-dmc: samples per dataset re-scored."),
    target_size: int = typer.Option(32, "--target-size", min=1, help="dynamic-dmc: target questions re-attempted per re-score (C_T)."),
    policy: str = typer.Option("argmax", "--policy", help="dynamic-dmc mixture policy: argmax[:dwell], softmax[:tau], proportional."),
    attempts_max_new_tokens: int | None = typer.Option(None, "--attempts-max-new-tokens", min=1, help="Generation budget of the student's attempts (capability)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Pilot processes (default: min(2, cores))."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch threads per pilot process (default: cores / workers)."),
    device: str = typer.Option("cpu", "--device", help="Torch device of the pilots."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Statistics cache (default: see `dmc score`)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Also write OUT/report (HTML + Markdown)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Live display of the pilots."),
) -> None:
    """Validate the metrics on cheap pilots: E1 correlations, E2 static selection, E3 curricula.

    Finished pilots are cached under OUT/pilots and skipped on a rerun (a killed run resumes).
    """
    from dmc.data import DataError
    from dmc.validation import ValidateConfig, validate

    console = Console(stderr=True)
    _quiet_hub_bars()
    command = "dmc " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    train = {"steps": steps, "batch_size": batch_size, "learning_rate": lr, "lora_r": lora_r,
             "max_length": max_length, "eval_max_new_tokens": eval_max_new_tokens}
    try:
        cfg = ValidateConfig(
            experiments=_csv(experiments) or (), train=train, pilot_samples=pilot_samples, seeds=_ints(seeds, "--seeds"),
            metrics=_csv(metrics), max_samples=max_samples, n_boot=n_boot, e2_policy=e2_policy,
            e3_strategies=_csv(e3_strategies) or (), e3_steps=e3_steps, e3_eval_every=e3_eval_every,
            rescore_every=rescore_every, probe_size=probe_size, target_size=target_size, policy=policy,
            attempts_max_new_tokens=attempts_max_new_tokens, device=device, workers=workers, threads=threads,
            stats_cache=str(cache_dir) if cache_dir else None)
    except (ValueError, KeyError) as e:
        raise typer.BadParameter(str(e)) from None
    try:
        result = validate(student, [str(p) for p in pool], str(eval_set), out, cfg, progress=progress,
                          console=console, command=command)
    except (DataError, FileNotFoundError, ValueError, KeyError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    print_headline(Console(), result)
    console.print(f"results in {out} ({result.seconds:.0f}s)")
    if report:
        from dmc.report import write_report

        paths = write_report(out)
        console.print(f"report: {paths.html} and {paths.markdown}")
