"""Several validation runs side by side (students × task families): E1 accuracy per dataset, how
alike the runs rank the datasets, Spearman ρ of every metric, E2's selector accuracies and E3's
final accuracies, one column per run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from dmc.report.load import RunResults, load_run
from dmc.report.tables import Table, pct
from dmc.validation.correlation import fmt_rho
from dmc.io import atomic_write_text


def run_label(run: RunResults) -> str:
    """'<student> / <family>' from the manifest (the family is read from the eval items' source path)."""
    st = (run.manifest.get("student") or {}).get("name") or "?"
    src = str((run.manifest.get("eval") or {}).get("source") or "")
    family = Path(src).parent.name if src and not src.startswith("<") else run.run_dir.name
    return f"{st} / {family}"


def _nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def correlation_table(runs: Sequence[RunResults], labels: Sequence[str], method: str = "spearman") -> Table | None:
    """Rows: metrics (ordered by mean signed coefficient over the runs); columns: runs; cells: value [CI].
    `method`: spearman, kendall or pearson (E1 computes all three)."""
    per_run = []
    for r in runs:
        c = r.e1_correlations
        per_run.append({} if c is None else {row.metric: row for row in c[c["method"] == method].itertuples(index=False)})
    metrics = list(dict.fromkeys(m for d in per_run for m in d))
    if not metrics:
        return None

    def mean_signed(m: str) -> float:
        v = [d[m].signed for d in per_run if m in d and not _nan(d[m].signed)]
        return sum(v) / len(v) if v else -math.inf

    metrics.sort(key=mean_signed, reverse=True)
    rows = []
    for m in metrics:
        direction = next((d[m].direction for d in per_run if m in d), "")
        cells = [fmt_rho(d[m].rho, d[m].lo, d[m].hi) if m in d else "—" for d in per_run]
        ms = mean_signed(m)
        rows.append([m, direction, *cells, "n/a" if ms == -math.inf else f"{ms:+.2f}"])
    if method == "spearman":  # how far each run's seed noise caps any metric's rho
        ceilings = [r.seed_agreement() or {} for r in runs]
        rows.append(["noise ceiling (seeds)", "", *("n/a" if _nan(a.get("ceiling", math.nan)) else f"{a['ceiling']:.2f}"
                                                   for a in ceilings), ""])
    name = {"spearman": "Spearman ρ", "kendall": "Kendall τ", "pearson": "Pearson r"}.get(method, method)
    symbol = name.split()[-1]
    return Table(["metric", "direction", *labels, f"mean signed {symbol}"], rows,
                 f"E1: {name} between each metric on the initial student and post-training accuracy "
                 f"[95% bootstrap CI]; a lower-is-better metric predicts well with a negative {symbol} "
                 f"(signed {symbol} flips it).")


def e2_table(runs: Sequence[RunResults], labels: Sequence[str]) -> Table | None:
    sel = [{s["metric"]: s for s in (r.e2 or {}).get("selectors", [])} for r in runs]
    metrics = list(dict.fromkeys(m for d in sel for m in d))
    if not metrics:
        return None
    rows = []
    for m in metrics:
        cells = []
        for d in sel:
            s = d.get(m)
            if s is None:
                cells.append("—")
            elif s.get("error"):
                cells.append(f"n/a ({s['error']})")
            else:
                cells.append(f"{pct(s.get('accuracy'), s.get('accuracy_std'))} ({', '.join(s.get('chosen') or [])})")
        rows.append([m, *cells])
    best = []
    for r in runs:
        o = ((r.e2 or {}).get("reference") or {}).get("oracle") or {}
        best.append(f"{pct(o.get('accuracy'))} ({o.get('dataset')})" if o else "—")
    rows.append(["best single dataset (E1)", *best])
    return Table(["selector", *labels], rows, "E2: accuracy after training on the data each metric chooses (chosen dataset)")


def e3_table(runs: Sequence[RunResults], labels: Sequence[str]) -> Table | None:
    st = [(r.e3 or {}).get("strategies", {}) for r in runs]
    names = list(dict.fromkeys(n for d in st for n in d))
    if not names:
        return None
    rows = [[n, *(pct(d[n].get("final_accuracy"), d[n].get("final_accuracy_std")) if n in d else "—" for d in st)]
            for n in names]
    return Table(["strategy", *labels], rows, "E3: final accuracy per curriculum, equal total steps")


def _e1_accuracy(run: RunResults) -> dict[str, tuple[float, float | None]]:
    """{dataset: (mean accuracy over seeds, std)} from E1 (NaN where no pilot finished)."""
    out = {}
    for d in (run.e1 or {}).get("datasets", []):
        acc = d.get("accuracy")
        out[d["dataset"]] = (float("nan") if _nan(acc) else float(acc), d.get("accuracy_std"))
    return out


def accuracy_table(runs: Sequence[RunResults], labels: Sequence[str]) -> Table | None:
    """Rows: datasets (by mean accuracy over the runs); columns: runs; cells: E1 accuracy ± std over seeds.
    The last row is each run's spread, best minus worst dataset."""
    acc = [_e1_accuracy(r) for r in runs]
    names = list(dict.fromkeys(n for a in acc for n in a))
    if not names:
        return None

    def mean_acc(n: str) -> float:
        v = [a[n][0] for a in acc if n in a and not _nan(a[n][0])]
        return sum(v) / len(v) if v else -math.inf

    names.sort(key=mean_acc, reverse=True)
    rows = [[n, *(pct(*a[n]) if n in a else "—" for a in acc)] for n in names]
    spread = []
    for a in acc:
        v = {n: x for n, (x, _) in a.items() if not _nan(x)}
        spread.append("—" if not v else f"{100 * (max(v.values()) - min(v.values())):.1f} points "
                      f"({max(v, key=v.get)} − {min(v, key=v.get)})")
    rows.append(["spread (best − worst)", *spread])
    return Table(["dataset", *labels], rows, "E1: post-training accuracy per candidate dataset (mean ± std over seeds)")


def ranking_agreement_table(runs: Sequence[RunResults], labels: Sequence[str]) -> Table | None:
    """Spearman ρ between two runs' E1 accuracies over their common datasets, for every pair of runs
    that share at least three datasets (e.g. two students on one pool: do they rank the data alike?)."""
    from scipy.stats import spearmanr

    acc = [_e1_accuracy(r) for r in runs]
    rows = []
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            common = [n for n in acc[i] if n in acc[j] and not _nan(acc[i][n][0]) and not _nan(acc[j][n][0])]
            if len(common) < 3:
                continue
            rho = spearmanr([acc[i][n][0] for n in common], [acc[j][n][0] for n in common]).statistic
            rows.append([labels[i], labels[j], str(len(common)), "n/a" if _nan(float(rho)) else f"{rho:+.2f}"])
    if not rows:
        return None
    return Table(["run", "other run", "datasets", "Spearman ρ of accuracies"], rows,
                 "E1: do two runs rank the common candidate datasets alike? (1 = same order)")


def compare_markdown(run_dirs: Sequence[str | Path], title: str = "DMC validation: runs compared") -> str:
    runs = [load_run(d) for d in run_dirs]
    labels = [run_label(r) for r in runs]
    lines = [f"# {title}", ""]
    for r, lab in zip(runs, labels):
        cmd = r.manifest.get("command")
        lines.append(f"- **{lab}**: `{r.run_dir}`" + (f" — `{cmd}`" if cmd else ""))
    for t in (accuracy_table(runs, labels), ranking_agreement_table(runs, labels), correlation_table(runs, labels),
              correlation_table(runs, labels, "kendall"), correlation_table(runs, labels, "pearson"),
              e2_table(runs, labels), e3_table(runs, labels)):
        if t is not None:
            lines += ["", t.to_markdown()]
    return "\n".join(lines) + "\n"


def write_comparison(run_dirs: Sequence[str | Path], out: str | Path, title: str | None = None) -> Path:
    """Write OUT/compare.md for several run directories."""
    path = Path(out) / "compare.md"
    return atomic_write_text(path, compare_markdown(run_dirs, title or "DMC validation: runs compared"))
