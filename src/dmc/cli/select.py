"""`dmc select`: static selection of training data from `dmc score` results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from dmc.cli.app import app
from dmc.cli.options import FIELDS, USER_ERRORS, command, error_text, fail, field_map, require, wide_console
from dmc.data import load_pool
from dmc.metrics import ScoreReport
from dmc.selection import select, write_selection
from dmc.selection.select import parse_policy
from dmc.settings import SEED, setting


@dataclass(frozen=True)
class SelectCommand:
    """`dmc select`: which scores, which policy, how much, and where the selection goes."""

    datasets: tuple[str, ...] = setting((), "Candidate datasets (default: the sources recorded by `dmc score`).",
                                        result=False, positional=True, path="in")
    scores: str | None = setting(None, "Output directory of `dmc score`. Required.", result=False, path="in")
    fields: tuple[str, ...] = FIELDS.field()
    policy: str = setting("top1", "NAME[:ARG]: top1, topk:K, proportional, softmax[:TAU] (default TAU 0.05) or "
                          "samples:top-fraction[:F] (F in (0, 1]: share of scored samples to keep).")
    budget: float | None = setting(None, "How much to select, in --unit (default: all of the chosen datasets / the "
                                   "fraction F).", min=0.0)
    unit: str = setting("samples", "Budget unit: samples or tokens (response tokens of the student's tokenizer).",
                        choices=("samples", "tokens"))
    metric: str = setting("dmc", "Score to select by (any computed metric; per sample, DMC uses m_i).")
    within: bool = setting(False, "samples:top-fraction: the top fraction of each dataset (else of all samples).")
    order: str = setting("auto", "auto (the metric's direction), desc or asc.", choices=("auto", "desc", "asc"))
    seed: int = SEED.field()
    out: str | None = setting(None, "JSONL to write (default: SCORES/selected.jsonl); the manifest goes next to it.",
                              result=False, path="out_file")

    def __post_init__(self) -> None:
        parse_policy(self.policy)  # a bad policy fails before anything is read


def run_select(c: SelectCommand) -> None:
    require(c.scores, "--scores")
    scores = Path(c.scores)
    console = wide_console()
    try:
        report = ScoreReport.read(scores)
        if c.datasets:
            paths = [Path(p) for p in c.datasets]
        else:
            recorded = report.meta.get("datasets") or {}
            paths = [Path(v["source"]) for v in recorded.values() if v.get("source")]
            missing = [str(p) for p in paths if not p.exists()]
            if not paths or missing or len(paths) != len(recorded):
                raise ValueError("give the candidate datasets: the scores do not record usable sources"
                                 + (f" (missing: {', '.join(missing)})" if missing else ""))
        pool = load_pool(paths, fields=field_map(c.fields))
        sel = select(report, pool, policy=c.policy, budget=c.budget, unit=c.unit, metric=c.metric,
                     within=c.within, order=c.order, seed=c.seed)  # type: ignore[arg-type]
        jsonl, manifest = write_selection(sel, Path(c.out) if c.out is not None else scores / "selected.jsonl")
    except USER_ERRORS + (TypeError,) as e:
        fail(error_text(e))

    m = sel.manifest
    t = Table(title=f"selection: {c.policy} by {c.metric}")
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


command(app, "select", SelectCommand, run_select, help="""Select training data by DMC (or any metric) and write it as
chat `messages` JSONL plus a manifest.

Example:

    dmc select --scores scores --policy softmax:0.1 --budget 2000 --out train.jsonl
""")
