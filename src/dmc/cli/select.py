"""`dmc select`: static selection of training data from `dmc score` results."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from dmc.cli.app import app
from dmc.data import DataError, load_pool
from dmc.metrics import ScoreReport
from dmc.selection import select, write_selection
from dmc.cli.score import wide_console


@app.command("select")
def select_cmd(
    datasets: list[Path] = typer.Argument(None, help="Candidate datasets (default: the sources recorded by `dmc score`)."),
    scores: Path = typer.Option(..., "--scores", help="Output directory of `dmc score`."),
    policy: str = typer.Option("top1", "--policy", help="NAME[:ARG]: top1, topk:K, proportional, softmax[:TAU] (default TAU 0.05) "
                               "or samples:top-fraction[:F] (F in (0, 1]: share of scored samples to keep)."),
    budget: float | None = typer.Option(None, "--budget", help="How much to select, in --unit (default: all of the chosen datasets / the fraction F)."),
    unit: str = typer.Option("samples", "--unit", help="Budget unit: samples or tokens (response tokens of the student's tokenizer)."),
    metric: str = typer.Option("dmc", "--metric", help="Score to select by (any computed metric; per sample, DMC uses m_i)."),
    within: bool = typer.Option(False, "--within/--across", help="samples:top-fraction: the top fraction of each dataset, or of all samples."),
    order: str = typer.Option("auto", "--order", help="auto (the metric's direction), desc or asc."),
    seed: int = typer.Option(0, "--seed", help="Seed of the draws within datasets and of ties."),
    out: Path | None = typer.Option(None, "--out", help="JSONL to write (default: SCORES/selected.jsonl); the manifest goes next to it."),
) -> None:
    """Select training data by DMC (or any metric) and write it as chat `messages` JSONL plus a manifest."""
    console = wide_console()
    try:
        report = ScoreReport.read(scores)
        if datasets:
            paths = list(datasets)
        else:
            recorded = report.meta.get("datasets") or {}
            paths = [Path(v["source"]) for v in recorded.values() if v.get("source")]
            missing = [str(p) for p in paths if not p.exists()]
            if not paths or missing or len(paths) != len(recorded):
                raise ValueError("give the candidate datasets: the scores do not record usable sources"
                                 + (f" (missing: {', '.join(missing)})" if missing else ""))
        pool = load_pool(paths)
        sel = select(report, pool, policy=policy, budget=budget, unit=unit, metric=metric,
                     within=within, order=order, seed=seed)  # type: ignore[arg-type]
        jsonl, manifest = write_selection(sel, out if out is not None else scores / "selected.jsonl")
    except (DataError, FileNotFoundError, ValueError, KeyError, TypeError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError's str() adds quotes
        console.print(f"[red]error:[/red] {escape(str(msg))}", highlight=False)
        raise typer.Exit(2) from None

    m = sel.manifest
    t = Table(title=f"selection: {policy} by {metric}")
    for col in ("dataset", "score", "weight", "samples", "tokens"):
        t.add_column(col, justify="left" if col == "dataset" else "right")
    names = list(m.get("weights") or m["counts"])
    for d in names:
        c = m["counts"].get(d, {"samples": 0, "tokens": 0})
        sc = (m.get("scores") or {}).get(d)
        w = (m.get("weights") or {}).get(d)
        t.add_row(d, "" if sc is None else f"{sc:.3f}", "" if w is None else f"{w:.3f}", str(c["samples"]),
                  "?" if c["tokens"] is None else str(c["tokens"]))
    console.print(t)
    for key in ("excluded_datasets", "excluded_samples", "skipped_samples", "budget_note", "note"):
        if m.get(key):
            console.print(f"{key.replace('_', ' ')}: {m[key]}", highlight=False)
    console.print(f"{m['n_selected']} samples, {m['n_tokens'] if m['n_tokens'] is not None else '?'} response tokens; "
                  f"wrote {jsonl} and {manifest}", highlight=False)
