"""`dmc score`: DMC and baseline scores of candidate datasets for a student."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from dmc.cli.app import app


def wide_console() -> Console:
    """A console that does not squeeze wide tables into 80 columns when writing to a pipe or file."""
    c = Console()
    return c if c.is_terminal else Console(width=160)


def _metric_list(metrics: str | None) -> list[str] | None:
    if metrics is None:
        return None
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    if not names:
        raise ValueError("--metrics is empty")
    return names


@app.command("score")
def score_cmd(
    datasets: list[Path] = typer.Argument(..., help="Candidate dataset files or directories (each file is one dataset)."),
    student: str = typer.Option(..., "--student", help="A built-in student name, a Hugging Face model directory or a .gguf file."),
    out: Path = typer.Option(Path("dmc-out/score"), "--out", help="Output directory: samples.parquet, datasets.json, datasets.csv."),
    eval_set: Path | None = typer.Option(None, "--eval", help="Target questions with gold (C_T); default: the pool's own questions."),
    metrics: str | None = typer.Option(None, "--metrics", help="Comma-separated metrics (default: all). See the footer for the list."),
    max_samples: int | None = typer.Option(None, "--max-samples", min=1, help="Score at most N samples per dataset (seeded; the same questions across datasets)."),
    epsilon: float = typer.Option(1.0, "--epsilon", help="DMC quality floor: w = eps + (1 - eps) q."),
    sigma: float = typer.Option(0.25, "--sigma", help="DMC difficulty-match width: R = exp(-(C_D - C_T)^2 / 2 sigma^2)."),
    content: str = typer.Option("numbers", "--content", help="DMC content tokens: numbers, words or all."),
    top_k: int = typer.Option(1, "--top-k", min=1, help="A content token is aligned when its rank <= K."),
    sigma_logit: float = typer.Option(1.5, "--sigma-logit", help="dmc_v2 difficulty-match width on the log-odds scale."),
    prior: float = typer.Option(0.5, "--prior", help="dmc_v2 pseudo-count of passes and of fails shrinking each pass rate."),
    match_side: str = typer.Option("both", "--match-side", help="dmc_v2 difficulty match: both (penalize easier and harder sets) or easier."),
    budget: int | None = typer.Option(None, "--budget", min=1, help="Student generation budget in tokens: a trace longer than this gets weight 0 in DMC (default: unlimited)."),
    pseudo_gold: bool = typer.Option(False, "--pseudo-gold/--no-pseudo-gold", help="Without gold, use the teachers' majority answer (flagged)."),
    n_boot: int = typer.Option(1000, "--n-boot", min=0, help="Bootstrap resamples for the DMC interval (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of subsampling, bootstrap, random baseline and sampled attempts."),
    max_length: int = typer.Option(1024, "--max-length", min=2, help="Max tokens of prompt + response; longer responses are cut and flagged."),
    batch_tokens: int = typer.Option(8192, "--batch-tokens", min=1, help="Padded tokens per scoring batch."),
    k: int = typer.Option(1, "--k", min=1, help="Student attempts per question (capability)."),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="Sampling temperature of attempts; 0 = greedy."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus mass of sampled attempts."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Generation budget per attempt."),
    cache: Path | None = typer.Option(None, "--cache", help="Statistics cache (default: OUT/cache); a re-run reuses it."),
    device: str = typer.Option("cpu", "--device", help="Torch device of the student."),
    dtype: str = typer.Option("auto", "--dtype", help="Student dtype: auto, float32, bfloat16 or float16."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Score candidate datasets for a student: one row per dataset, sorted by DMC, with its CI and components."""
    from dmc.data import DataError
    from dmc.metrics import MetricSettings
    from dmc.scoring import score
    from dmc.stats import AttemptSettings, TokenStatsSettings

    console = wide_console()
    try:
        names = _metric_list(metrics)
        from dmc.metrics import get_metrics

        chosen = get_metrics(names)
        settings = MetricSettings(epsilon=epsilon, sigma=sigma, content=content, top_k=top_k,
                                  sigma_logit=sigma_logit, prior=prior, match_side=match_side, budget=budget,
                                  pseudo_gold=pseudo_gold, n_boot=n_boot, seed=seed)
        tok = TokenStatsSettings(max_length=max_length, batch_tokens=batch_tokens,
                                 with_ifd=any("tokens_noq" in m.needs for m in chosen))
        att = AttemptSettings(k=k, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                              seed=seed, verifier=settings.verifier)
        report = score(datasets, student, eval_set=eval_set, metrics=names, max_samples=max_samples,
                       settings=settings, token_settings=tok, attempt_settings=att, cache_dir=cache,
                       out_dir=out, seed=seed, device=device, dtype=dtype, progress=progress)
    except (DataError, FileNotFoundError, ValueError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError's str() adds quotes
        console.print(f"[red]error:[/red] {escape(str(msg))}", highlight=False)
        raise typer.Exit(2) from None
    console.print(report.table())
    for what, unit in (("tokens", "samples"), ("attempts", "questions")):
        r = report.meta["run"].get(what)
        if r:
            label = "token statistics" if what == "tokens" else "student attempts"
            console.print(f"{label}: {r['computed']} {unit} computed, {r['reused']} reused from cache "
                          f"({report.meta['stats']['cache']})", highlight=False)
    console.print(f"wrote samples.parquet, datasets.json, datasets.csv to {out}", highlight=False)
