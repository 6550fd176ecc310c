"""Running metrics over the tables, and the report they produce.

:func:`score_tables` runs the chosen metrics on a :class:`ScoringContext` and assembles a
:class:`ScoreReport`: ``.datasets`` (one row per candidate dataset, sorted by DMC when computed)
and ``.samples`` (one row per sample), stamped with ``.meta`` (metric versions, settings, and
whatever the caller adds: student fingerprint, statistics settings ...).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from dmc import __version__, environment
from dmc.io import atomic_write, jsonable
from dmc.metrics.base import METRICS, get_metrics
from dmc.metrics.context import Grader, ScoringContext
from dmc.metrics.settings import MetricSettings

SAMPLES_FILE = "samples.parquet"
DATASETS_JSON = "datasets.json"
DATASETS_CSV = "datasets.csv"
_BASE_SAMPLE_COLS = ["dataset", "sample_id", "sample_hash", "question_hash", "gold", "n_tokens", "truncated"]


def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


@dataclass
class ScoreReport:
    """Per-dataset and per-sample scores plus what made them.

    datasets: one row per candidate dataset (column ``dataset``), sorted by DMC (best first) when
    DMC was computed. samples: one row per (dataset, sample). meta: metric declarations and
    versions, settings, student fingerprint and run information. ``nan_reasons`` (per dataset)
    counts, for each metric, the samples whose value is NaN, by reason.
    """

    datasets: pd.DataFrame
    samples: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> list[str]:
        return list(self.meta.get("metrics", {}))

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Writes samples.parquet, datasets.json and datasets.csv atomically; returns their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        meta_json = json.dumps(jsonable(self.meta), sort_keys=True)
        paths = {"samples": out / SAMPLES_FILE, "datasets_json": out / DATASETS_JSON,
                 "datasets_csv": out / DATASETS_CSV}

        table = pa.Table.from_pandas(self.samples, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"dmc": meta_json.encode()})
        atomic_write(paths["samples"], lambda p: pq.write_table(table, p))

        records = [jsonable(r) for r in self.datasets.to_dict(orient="records")]
        doc = {"meta": json.loads(meta_json), "datasets": records}
        text = json.dumps(doc, indent=2) + "\n"
        atomic_write(paths["datasets_json"], lambda p: Path(p).write_text(text, encoding="utf-8"))

        csv = self.datasets.copy()
        for col in ("nan_reasons", "reasons"):
            csv[col] = [json.dumps(jsonable(v), sort_keys=True) for v in csv[col]]
        csv["student_fingerprint"] = (self.meta.get("student") or {}).get("fingerprint")
        csv["metric_versions"] = json.dumps({k: v["version"] for k, v in self.meta.get("metrics", {}).items()},
                                            sort_keys=True)
        csv["settings"] = json.dumps(jsonable(self.meta.get("settings", {})), sort_keys=True)
        atomic_write(paths["datasets_csv"], lambda p: csv.to_csv(p, index=False))
        return paths

    def table(self) -> Any:
        """A rich Table: one row per dataset (best DMC first), with a footer of metric directions."""
        return render_table(self)

    @classmethod
    def read(cls, out_dir: str | Path) -> ScoreReport:
        """Reads a report written by :meth:`write`."""
        out = Path(out_dir)
        jpath = out / DATASETS_JSON
        if not jpath.exists():
            raise FileNotFoundError(f"{jpath}: no such file (expected the output directory of `dmc score`)")
        doc = json.loads(jpath.read_text(encoding="utf-8"))
        for key in ("meta", "datasets"):
            if key not in doc:
                raise ValueError(f"{jpath}: missing top-level field {key!r}")
        ds = pd.DataFrame(doc["datasets"])
        for col in ds.columns:
            if col not in ("dataset", "nan_reasons", "reasons") and ds[col].dtype == object:
                conv = pd.to_numeric(ds[col], errors="coerce")
                if conv.notna().sum() == ds[col].notna().sum():
                    ds[col] = conv.astype(float)
        spath = out / SAMPLES_FILE
        samples = pq.read_table(spath).to_pandas() if spath.exists() else pd.DataFrame()
        return cls(datasets=ds, samples=samples, meta=doc["meta"])


def score_tables(
    samples: Any,
    tokens: pd.DataFrame | None = None,
    attempts: pd.DataFrame | None = None,
    *,
    metrics: Sequence[str] | None = None,
    settings: MetricSettings | None = None,
    target_questions: Sequence[str] | None = None,
    grader: Grader | None = None,
    meta: dict[str, Any] | None = None,
    answers: pd.DataFrame | None = None,
) -> ScoreReport:
    """Runs ``metrics`` (default: all registered) on the samples and cached tables.

    samples: a pool (list of CandidateDataset), a list of Samples or a frame from
    ``samples_frame``. tokens / attempts / answers: the cached tables of docs/ARCHITECTURE.md.
    target_questions: question hashes of the target tasks (for C_T); None = the whole pool.
    """
    ctx = ScoringContext(samples, tokens, attempts, settings, target_questions, grader, answers=answers)
    chosen = get_metrics(list(metrics) if metrics is not None else None)
    s = ctx.samples
    rows = ctx.token_rows
    out_s = s[["dataset", "sample_id", "sample_hash", "question_hash", "gold"]].copy()
    out_s["n_tokens"] = rows["n_tokens"].where(rows["has_tokens"]).astype("Int64") if "n_tokens" in rows else pd.NA
    out_s["truncated"] = rows["truncated"].where(rows["has_tokens"]).astype("boolean") if "truncated" in rows else pd.NA

    out_d = pd.DataFrame({"dataset": ctx.datasets})
    out_d["n_samples"] = [int((s["dataset"] == d).sum()) for d in ctx.datasets]
    # traces cut at the scoring max_length are counted, never silent (their alignment is NaN)
    cut = out_s["truncated"].fillna(False).astype(bool) if "truncated" in rows else pd.Series(False, index=s.index)
    out_d["n_truncated"] = [int((cut & (s["dataset"] == d)).sum()) for d in ctx.datasets]
    nan_reasons: dict[str, dict[str, dict[str, int]]] = {d: {} for d in ctx.datasets}
    ds_reasons: dict[str, dict[str, str]] = {d: {} for d in ctx.datasets}
    for metric in chosen:
        res = metric.compute(ctx)
        col = metric.column
        out_s[col] = res.sample_values.reindex(s.index).astype(float)
        out_s[f"{col}_reason"] = res.sample_reasons.reindex(s.index).map(lambda r: None if _is_missing(r) else str(r))
        if res.sample_extra is not None:
            for c in res.sample_extra.columns:
                if c not in out_s.columns:
                    out_s[c] = res.sample_extra[c].reindex(s.index)
        out_d[metric.name] = out_d["dataset"].map(res.dataset_values).astype(float)
        if res.dataset_extra is not None:
            for c in res.dataset_extra.columns:
                if c not in out_d.columns:
                    out_d[c] = out_d["dataset"].map(res.dataset_extra[c])
        for d in ctx.datasets:
            r = res.dataset_reasons.get(d) if len(res.dataset_reasons) else None
            if not _is_missing(r):
                ds_reasons[d][metric.name] = str(r)
            sel = (s["dataset"] == d) & out_s[col].isna()
            counts = Counter(out_s.loc[sel, f"{col}_reason"].fillna("unspecified"))
            if counts:
                nan_reasons[d][metric.name] = dict(sorted(counts.items()))
    for c in out_s.columns:
        if c.endswith("_reason"):
            out_s[c] = out_s[c].map(lambda r: None if _is_missing(r) else str(r)).astype(object)
    out_d["nan_reasons"] = out_d["dataset"].map(nan_reasons)
    out_d["reasons"] = out_d["dataset"].map(ds_reasons)
    lead = next((m for m in ("dmc", "dmc_v2") if m in out_d.columns), None)
    if lead:
        out_d = out_d.sort_values(lead, ascending=False, na_position="last", kind="stable")
    out_d = out_d.reset_index(drop=True)

    full_meta: dict[str, Any] = {
        "dmc_version": __version__,
        "environment": environment(),
        "metrics": {m.name: m.info() for m in chosen},
        "settings": ctx.settings.to_dict(),
        "target": {"kind": "pool" if ctx.target_questions is None else "eval",
                   "n_questions": int(s["question_hash"].nunique()) if ctx.target_questions is None
                   else len(ctx.target_questions)},
        "pseudo_gold_used": bool(out_s["pseudo_gold"].any()) if "pseudo_gold" in out_s else False,
    }
    full_meta.update(meta or {})
    return ScoreReport(datasets=out_d, samples=out_s.reset_index(drop=True), meta=full_meta)


def dmc_score(samples: Any, tokens: pd.DataFrame, attempts: pd.DataFrame, **kw: Any) -> ScoreReport:
    """DMC v1 alone (see :func:`score_tables` for the arguments)."""
    return score_tables(samples, tokens, attempts, metrics=["dmc"], **kw)


def directions_footer(names: Sequence[str]) -> str:
    """One line per metric: its direction and range, for table footers."""
    arrows = {"higher": "higher is better", "lower": "lower is better", "none": "no preferred direction"}
    parts = []
    for n in names:
        m = METRICS[n]
        lo, hi = (_fmt_bound(b) for b in m.range)
        parts.append(f"{n} ({m.version}): {arrows[m.direction]}, range [{lo}, {hi}]")
    return "\n".join(parts)


def _fmt_bound(b: float) -> str:
    return "∞" if b == float("inf") else "-∞" if b == float("-inf") else f"{b:g}"


def _f(x: Any, fmt: str = ".3f") -> str:
    return "NaN" if _is_missing(x) or (isinstance(x, float) and math.isnan(x)) else format(float(x), fmt)


def _nan_lines(ds: pd.DataFrame) -> list[str]:
    lines = []
    for _, r in ds.iterrows():
        reasons = r["nan_reasons"]
        if isinstance(reasons, dict) and reasons:
            parts = [f"{m}: " + ", ".join(f"{why} ×{n}" for why, n in counts.items()) for m, counts in reasons.items()]
            lines.append(f"  {r['dataset']}: " + "; ".join(parts))
    return lines


# Columns of the summary table (the files hold every metric); label and number format.
_TABLE_METRICS = {"rsr": ("RSR", ".3f"), "ifd": ("IFD", ".3f"), "mean_logprob": ("mean log-prob", ".3f"),
                  "length": ("length", ".1f")}


def render_table(report: ScoreReport) -> Any:
    """The rich renderable of :meth:`ScoreReport.table`: the table, NaN reasons, and the footer."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    ds = report.datasets
    names = [n for n in report.metrics if n in METRICS]
    cols: list[tuple[str, Any]] = [("dataset", lambda r: str(r["dataset"]))]
    if "dmc" in names:
        cols += [
            ("DMC [CI]", lambda r: f"{_f(r['dmc'])} [{_f(r['dmc_lo'])}, {_f(r['dmc_hi'])}]"),
            ("Q", lambda r: _f(r["Q"], ".2f")), ("C_D", lambda r: _f(r["C_D"], ".2f")),
            ("R", lambda r: _f(r["R"], ".2f")), ("A", lambda r: _f(r["A"], ".3f")),
        ]
    if "dmc_v2" in names and "dmc" in names:  # v1's components are shown; v2 gets one column (80-column terminals)
        cols.append(("dmc_v2", lambda r: _f(r["dmc_v2"])))
    elif "dmc_v2" in names:
        cols += [
            ("dmc_v2 [CI]", lambda r: f"{_f(r['dmc_v2'])} [{_f(r['dmc_v2_lo'])}, {_f(r['dmc_v2_hi'])}]"),
            ("R2", lambda r: _f(r["R2"], ".2f")), ("A_v2", lambda r: _f(r.get("A_v2", float("nan")), ".3f")),
        ]
    for n in names:
        if n in _TABLE_METRICS:
            label, fmt = _TABLE_METRICS[n]
            cols.append((label, lambda r, n=n, fmt=fmt: _f(r[n], fmt)))
    if "dmc" in names:
        cols.append(("n scored", lambda r: str(int(r["n_scored"]))))
    cols.append(("n", lambda r: str(int(r["n_samples"]))))
    cols.append(("n NaN", lambda r: str(sum(sum(c.values()) for c in (r["nan_reasons"] or {}).values()))))

    meta = report.meta
    title = "DMC scores"
    student = meta.get("student") or {}
    if student.get("name") or student.get("fingerprint"):
        title += f" — student {student.get('name', '')} [{student.get('fingerprint', '')}]"
    t = Table(title=Text(title))
    for name, _ in cols:
        t.add_column(name, justify="left" if name == "dataset" else "right", no_wrap=name != "dataset")
    for _, r in ds.iterrows():
        t.add_row(*(Text(fn(r)) for _, fn in cols))  # Text: names with [brackets] are not markup

    notes: list[str] = []
    if "dmc" in names and len(ds):
        tgt = meta.get("target", {})
        notes.append(f"C_T = {_f(ds['C_T'].iloc[0])} over {tgt.get('n_questions', '?')} "
                     f"{'eval' if tgt.get('kind') == 'eval' else 'pool'} questions; DMC interval: "
                     f"{round(100 * meta.get('settings', {}).get('ci', 0.95))}% bootstrap over samples")
    if meta.get("pseudo_gold_used"):
        notes.append("quality uses the cross-teacher majority answer as pseudo-gold where gold is missing")
    nan = _nan_lines(ds)
    if nan:
        notes += ["NaN by reason (samples):", *nan]
    notes += ["Directions:", *("  " + line for line in directions_footer(names).splitlines())]
    return Group(t, Text("\n".join(notes)))
