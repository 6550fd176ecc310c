"""The report's tables, built once and rendered to both HTML and Markdown."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dmc.report.load import RunResults
from dmc.validation.correlation import fmt_rho

_ARROW = {"higher": "↑ higher is better", "lower": "↓ lower is better", "none": "– no direction"}
# Score columns shown per dataset, in this order, when present.
DATASET_COLUMNS = ("dmc", "Q", "A", "C_D", "C_T", "R", "rsr", "ifd", "mean_logprob", "length", "teacher_accuracy",
                   "student_fail_rate", "random")


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""
    notes: list[str] = field(default_factory=list)

    def to_html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in self.rows)
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in self.notes)
        return (f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
                f"</div>{notes}")

    def to_markdown(self) -> str:
        def esc(s: str) -> str:
            return s.replace("|", "\\|").replace("\n", " ")

        lines = []
        if self.caption:
            lines += [f"*{esc(self.caption)}*", ""]
        lines.append("| " + " | ".join(esc(h) for h in self.headers) + " |")
        lines.append("|" + "|".join("---" for _ in self.headers) + "|")
        lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"> {esc(n)}" for n in self.notes]
        return "\n".join(lines)


def _nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def num(x: Any, digits: int = 3) -> str:
    if _nan(x):
        return "n/a"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if v.is_integer() and abs(v) >= 10:
        return str(int(v))  # counts and lengths
    return f"{v:.{digits}g}" if abs(v) >= 1000 else f"{v:.{digits}f}"


def pct(x: Any, std: Any = None) -> str:
    if _nan(x):
        return "n/a"
    s = f"{100 * float(x):.1f}%"
    if not _nan(std) and float(std) > 0:
        s += f" ± {100 * float(std):.1f}"
    return s


def correlation_table(run: RunResults) -> Table | None:
    """Best predictor first: Spearman ρ [CI], signed ρ, Kendall τ, Pearson r per metric."""
    c = run.e1_correlations
    if c is None or c.empty:
        return None
    by = {(r.metric, r.method): r for r in c.itertuples(index=False)}
    metrics = list(dict.fromkeys(c["metric"]))
    sp = c[c["method"] == "spearman"].set_index("metric")
    metrics.sort(key=lambda m: (-sp.loc[m, "signed"] if m in sp.index and not _nan(sp.loc[m, "signed"]) else math.inf))
    rows = []
    notes = []
    for m in metrics:
        s, k, p = by.get((m, "spearman")), by.get((m, "kendall")), by.get((m, "pearson"))
        direction = s.direction if s is not None else "none"
        cell = lambda r: "n/a" if r is None else fmt_rho(r.rho, r.lo, r.hi)  # noqa: E731
        rows.append([m, _ARROW.get(direction, direction), cell(s),
                     "n/a" if s is None or _nan(s.signed) else f"{s.signed:+.2f}", cell(k), cell(p),
                     "" if s is None else str(int(s.n))])
        if s is not None and isinstance(s.reason, str) and s.reason:
            notes.append(f"{m}: {s.reason}")
    ci = run.e1.get("ci", 0.95) if run.e1 else 0.95
    caption = (f"Correlation of each metric (on the initial student) with post-training accuracy across candidate "
               f"datasets; [{int(100 * ci)}% bootstrap CI]. 'signed ρ' flips lower-is-better metrics so that higher "
               "always means a better predictor.")
    return Table(["metric", "direction", "Spearman ρ", "signed ρ", "Kendall τ", "Pearson r", "n"], rows, caption,
                 notes)


def datasets_frame(run: RunResults) -> pd.DataFrame | None:
    """Per dataset: E1 accuracy (mean over seeds) joined with the initial student's scores."""
    acc = pd.DataFrame(run.e1["datasets"]) if run.e1 and run.e1.get("datasets") else None
    sc = run.scores
    if acc is None and sc is None:
        return None
    if acc is None:
        return sc.copy()
    if sc is None:
        return acc
    extra = [c for c in sc.columns if c not in acc.columns or c == "dataset"]
    return acc.merge(sc[extra], on="dataset", how="outer")


def dataset_table(run: RunResults) -> Table | None:
    df = datasets_frame(run)
    if df is None or df.empty:
        return None
    cols = [c for c in DATASET_COLUMNS if c in df.columns]
    notes = []
    if "C_T" in cols and pd.to_numeric(df["C_T"], errors="coerce").nunique(dropna=False) == 1:
        # the target's pass rate is one number for the whole pool
        cols.remove("C_T")
        notes.append(f"C_T (the student's pass rate on the target questions) = {num(df['C_T'].iloc[0])}")
    has_acc = "accuracy" in df.columns
    if has_acc:
        df = df.sort_values("accuracy", ascending=False, na_position="last")
    elif "dmc" in df.columns:
        df = df.sort_values("dmc", ascending=False, na_position="last")
    headers = ["dataset"] + [c + (" [CI]" if c == "dmc" and "dmc_lo" in df.columns else "") for c in cols]
    cut = "n_truncated" in df.columns
    if cut:
        headers.append("truncated")
        notes.append("truncated: traces longer than the scoring max_length, cut; their alignment is NaN (truncated)")
    if has_acc:
        headers.append("post-training accuracy")
    rows = []
    for r in df.to_dict(orient="records"):
        row = [str(r["dataset"])]
        for c in cols:
            if c == "dmc" and "dmc_lo" in r and not _nan(r.get("dmc_lo")):
                row.append(f"{num(r[c])} [{num(r['dmc_lo'])}, {num(r['dmc_hi'])}]")
            else:
                row.append(num(r.get(c)))
        if cut:
            row.append("n/a" if _nan(r.get("n_truncated")) else str(int(r["n_truncated"])))
        if has_acc:
            row.append(pct(r.get("accuracy"), r.get("accuracy_std")))
        rows.append(row)
    dirs = run.directions()
    note = "; ".join(f"{c}: {_ARROW.get(dirs[c], dirs[c])}" for c in cols if c in dirs)
    if note:
        notes.insert(0, note)
    return Table(headers, rows, "Candidate datasets: scores on the initial student"
                 + (" and accuracy after an equal-budget pilot (mean ± std over seeds)" if has_acc else ""), notes)


def failures_table(run: RunResults) -> Table | None:
    """Every failed run with its error (their accuracy is n/a, never 0)."""
    rows = []
    for p in (run.e1 or {}).get("pilots", []):
        if p.get("status") == "failed":
            rows.append(["e1", str(p.get("dataset")), str(p.get("seed")), str(p.get("error"))])
    for sel in (run.e2 or {}).get("selectors", []):
        if sel.get("error"):
            rows.append(["e2", f"chosen by {sel.get('metric')}", "", str(sel["error"])])
        for p in sel.get("per_seed", []):
            if p.get("status") == "failed":
                rows.append(["e2", f"chosen by {sel.get('metric')}", str(p.get("seed")), str(p.get("error"))])
    for name, st in ((run.e3 or {}).get("strategies") or {}).items():
        for p in st.get("per_seed", []):
            if p.get("status") == "failed":
                rows.append(["e3", name, str(p.get("seed")), str(p.get("error"))])
    if not rows:
        return None
    return Table(["experiment", "run", "seed", "error"], rows, "Runs that failed (accuracy recorded as n/a)")


def e2_table(run: RunResults) -> Table | None:
    if not run.e2:
        return None
    rows = []
    sels = sorted(run.e2["selectors"], key=lambda s: -s["accuracy"] if not _nan(s.get("accuracy")) else math.inf)
    for s in sels:
        chosen = s.get("chosen")
        chosen_s = ", ".join(chosen) if isinstance(chosen, list) else str(chosen)
        rows.append([s["metric"], _ARROW.get(s.get("direction", ""), s.get("direction", "")), chosen_s,
                     str(s.get("n_samples", "")), pct(s.get("accuracy"), s.get("accuracy_std"))])
    ref = run.e2.get("reference") or {}
    notes = []
    if ref.get("oracle"):
        notes.append(f"oracle (best single dataset in E1): {ref['oracle'].get('dataset')} at "
                     f"{pct(ref['oracle'].get('accuracy'))}")
    if not _nan(ref.get("mean_dataset")):
        notes.append(f"mean over all datasets in E1: {pct(ref.get('mean_dataset'))}")
    if not _nan(ref.get("initial_accuracy")):
        notes.append(f"initial student: {pct(ref.get('initial_accuracy'))}")
    return Table(["selector", "direction", "chosen", "samples", "accuracy"], rows,
                 f"E2: data chosen by each metric (policy {run.e2.get('policy')}), equal budget", notes)


def e3_table(run: RunResults) -> Table | None:
    if not run.e3:
        return None
    rows = []
    for name, st in run.e3["strategies"].items():
        curve = st.get("curve") or []
        best = max((p["accuracy"] for p in curve if not _nan(p.get("accuracy"))), default=None)
        rows.append([name, pct(st.get("final_accuracy"), st.get("final_accuracy_std")), pct(best),
                     str(len(st.get("mixtures") or [])), num(st.get("rescore_noise"))])
    return Table(["strategy", "final accuracy", "best during training", "mixture decisions",
                  "re-score noise (s.e.)"], rows,
                 f"E3: curricula with equal total steps ({run.e3.get('steps')} steps)",
                 ["re-score noise: the mean bootstrap standard error of a dataset's DMC in a re-score "
                  "(over probe samples), against which the argmax policy weighs a switch"])
