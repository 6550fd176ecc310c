"""`write_report`: a self-contained HTML report (PNG figures embedded as base64 data URIs) and a
Markdown summary with the same figures as PNG files beside it."""

from __future__ import annotations

import base64
import html
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dmc import __version__
from dmc.report import plots
from dmc.report.load import RunResults, load_run
from dmc.report.tables import (Table, correlation_table, dataset_table, datasets_frame, e2_table, e3_table,
                               failures_table)
from dmc.io import atomic_write_bytes, atomic_write_text

HTML_FILE = "report.html"
MD_FILE = "report.md"
IMAGES_DIR = "report_files"


@dataclass
class Figure:
    name: str  # file stem
    title: str
    caption: str
    png: bytes | None
    missing: str = ""  # why there is no image


@dataclass
class Section:
    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


@dataclass
class ReportPaths:
    html: Path
    markdown: Path
    images: list[Path]


def _nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _seed_note(agreement: dict | None) -> str:
    """One sentence on how far seed noise caps the correlations (empty for runs without it)."""
    if not agreement or agreement.get("n_seeds", 0) < 2:
        return ""
    if _nan(agreement.get("ceiling")):
        return f" Seed noise: {agreement.get('reason')}."
    return (f" Seed noise: the seeds' dataset rankings agree with Spearman {agreement['mean_rho']:+.2f} on average, so "
            f"even a metric that knew each dataset's noise-free accuracy would reach about ρ "
            f"{agreement['ceiling']:.2f} against the mean over {agreement['n_seeds']} seeds (the noise ceiling).")


def _e1_section(run: RunResults) -> Section | None:
    if run.e1 is None and run.scores is None:
        return None
    sec = Section("E1 — does the score predict what the student learns?")
    if run.e1:
        e1 = run.e1
        seeds = e1.get("seeds", [])
        sec.intro = (f"One pilot distillation per candidate dataset with the same budget "
                     f"({_budget(e1.get('train'))}), {len(seeds)} seed(s) {seeds}; accuracy on the eval set after "
                     f"training, correlated with each metric computed on the initial student"
                     + (f" (initial accuracy {100 * e1['initial_accuracy']:.1f}%)." if not _nan(e1.get("initial_accuracy")) else ".")
                     + _budget_note(run.scores_meta.get("settings") or {})
                     + _seed_note(run.seed_agreement()))
    t = correlation_table(run)
    if t:
        sec.tables.append(t)
    t = dataset_table(run)
    if t:
        sec.tables.append(t)
    df = datasets_frame(run)
    if run.e1 and df is not None and "accuracy" in df.columns:
        corr = run.e1_correlations
        sp = corr[corr["method"] == "spearman"] if corr is not None else pd.DataFrame()
        rho = {r.metric: (r.rho, r.lo, r.hi) for r in sp.itertuples(index=False)}
        metrics = list(run.e1["metrics"])
        sec.figures.append(Figure(
            "e1_scatter", "Each metric vs post-training accuracy",
            "One point per candidate dataset; red: least-squares fit; title: Spearman ρ with its bootstrap CI.",
            plots.metric_scatter(df, metrics, rho, run.directions()), "no metric values"))
    if df is not None:
        sec.figures.append(Figure(
            "dmc_components", "DMC and its components per dataset",
            "DMC = R · mean(w·A) (error bar: bootstrap CI); Q teacher quality, A alignment on novel content "
            "tokens, R difficulty match, C_D the student's pass rate on the dataset's questions.",
            plots.dmc_components(df), "the scores hold no DMC columns"))
    return sec


def _budget_note(settings: dict) -> str:
    budget = settings.get("budget")
    if budget is None:
        return ""
    return (f" DMC was scored at a generation budget of {budget} tokens: a trace that does not reach its final "
            "answer within it counts 0 (F).")


def _budget(train: dict | None) -> str:
    if not train:
        return "budget not recorded"
    return f"{train.get('steps')} steps × batch {train.get('batch_size')}, lr {train.get('learning_rate')}"


def _e2_section(run: RunResults) -> Section | None:
    if not run.e2:
        return None
    e2 = run.e2
    sec = Section("E2 — static selection: data chosen by DMC vs by each baseline",
                  f"Each metric picks training data with the same policy ({e2.get('policy')}) and budget "
                  f"({_budget(e2.get('train'))}); the student is trained on it and evaluated.")
    t = e2_table(run)
    if t:
        sec.tables.append(t)
    vals = {s["metric"]: s.get("accuracy") for s in e2["selectors"]}
    errs = {s["metric"]: s.get("accuracy_std") for s in e2["selectors"]}
    oracle = (e2.get("reference") or {}).get("oracle") or {}
    ref = ("best dataset", oracle["accuracy"]) if not _nan(oracle.get("accuracy")) else None
    sec.figures.append(Figure("e2_accuracy", "Accuracy by selector",
                              "Post-training accuracy when each metric chooses the data (red: DMC; dashed: the "
                              "best single dataset found by E1).",
                              plots.bars(vals, errs, "E2: accuracy by selector", highlight="dmc", reference=ref),
                              "no selector finished"))
    return sec


def _e3_section(run: RunResults) -> Section | None:
    if not run.e3:
        return None
    e3 = run.e3
    strategies = e3["strategies"]
    sec = Section("E3 — dynamic vs static curriculum",
                  f"Each strategy trains the same student for the same total number of steps ({e3.get('steps')}); "
                  "accuracy is measured on the eval set during training.")
    t = e3_table(run)
    if t:
        sec.tables.append(t)
    sec.figures.append(Figure("e3_accuracy", "Accuracy curves per strategy", "Eval accuracy at each evaluation step.",
                              plots.accuracy_curves({k: v.get("curve") or [] for k, v in strategies.items()}),
                              "no accuracy was measured during training"))
    for name, st in strategies.items():
        if st.get("scores"):
            sec.figures.append(Figure(f"e3_dmc_{_slug(name)}", f"DMC of each dataset over training ({name})",
                                      "DMC re-computed on each dataset's probe subset with the current student.",
                                      plots.dmc_over_training(st["scores"], f"DMC during training ({name})"),
                                      "no re-scoring events"))
    for name, st in strategies.items():
        if st.get("mixtures"):
            sec.figures.append(Figure(f"e3_mixture_{_slug(name)}", f"Selection timeline ({name})",
                                      "Share of each candidate dataset in the training batches over time.",
                                      plots.selection_timeline(st["mixtures"], e3.get("steps"),
                                                               f"Mixture over datasets ({name})"),
                                      "no mixture decisions"))
    return sec


def _slug(s: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in s).strip("_") or "x"


def build_sections(run: RunResults) -> list[Section]:
    secs = [s for s in (_e1_section(run), _e2_section(run), _e3_section(run)) if s is not None]
    fails = failures_table(run)
    if fails:
        secs.append(Section("Failures", tables=[fails]))
    return secs


def _header(run: RunResults) -> list[tuple[str, str]]:
    m = run.manifest
    st = m.get("student") or (run.e1 or {}).get("student") or (run.scores_meta.get("student") or {})
    items = [("student", f"{st.get('name')} (fingerprint {st.get('fingerprint')})" if st else "not recorded")]
    if m.get("pool"):
        items.append(("candidate datasets", ", ".join(m["pool"].get("datasets", [])) or str(m["pool"])))
    if m.get("eval"):
        items.append(("eval set", f"{m['eval'].get('source')} ({m['eval'].get('n')} questions)"))
    items.append(("experiments", ", ".join(run.experiments) or "none (scores only)"))
    if m.get("command"):
        items.append(("command", m["command"]))
    items.append(("generated", f"{time.strftime('%Y-%m-%d %H:%M:%S')} by dmc {__version__}"))
    return items


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
.table-wrap{overflow-x:auto} table{border-collapse:collapse;margin:1em 0;font-size:.9em} caption{text-align:left;font-style:italic;margin-bottom:.3em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left} th{background:#f4f4f4}
figure{margin:1.2em 0} img{max-width:100%;height:auto;border:1px solid #eee} figcaption{font-size:.85em;color:#555}
.note{font-size:.85em;color:#555} dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em} dt{font-weight:600}
"""


def render_html(run: RunResults, sections: list[Section], title: str) -> str:
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><dl>"]
    parts += [f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in _header(run)]
    parts.append("</dl>")
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        if sec.intro:
            parts.append(f"<p>{html.escape(sec.intro)}</p>")
        parts += [t.to_html() for t in sec.tables]
        for f in sec.figures:
            if f.png is None:
                parts.append(f'<p class="note">{html.escape(f.title)}: not drawn ({html.escape(f.missing)}).</p>')
                continue
            uri = "data:image/png;base64," + base64.b64encode(f.png).decode("ascii")
            parts.append(f'<figure id="{f.name}"><img src="{uri}" alt="{html.escape(f.title)}">'
                         f"<figcaption><b>{html.escape(f.title)}.</b> {html.escape(f.caption)}</figcaption></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def render_markdown(run: RunResults, sections: list[Section], title: str, images_dir: str) -> str:
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in _header(run)]
    for sec in sections:
        lines += ["", f"## {sec.title}", ""]
        if sec.intro:
            lines += [sec.intro, ""]
        for t in sec.tables:
            lines += [t.to_markdown(), ""]
        for f in sec.figures:
            if f.png is None:
                lines += [f"*{f.title}: not drawn ({f.missing}).*", ""]
            else:
                lines += [f"![{f.title}]({images_dir}/{f.name}.png)", "", f"*{f.title}.* {f.caption}", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(run_dir: str | Path, out_dir: str | Path | None = None, *, title: str | None = None) -> ReportPaths:
    """Write OUT/report.html (self-contained) and OUT/report.md with OUT/report_files/*.png.

    OUT defaults to RUN_DIR/report. Reads what `dmc validate` wrote to RUN_DIR.
    """
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    title = title or "DMC validation report"
    sections = build_sections(run)
    images = []
    for sec in sections:
        for f in sec.figures:
            if f.png is not None:
                images.append(atomic_write_bytes(out / IMAGES_DIR / f"{f.name}.png", f.png))
    html_path = atomic_write_text(out / HTML_FILE, render_html(run, sections, title))
    md_path = atomic_write_text(out / MD_FILE, render_markdown(run, sections, title, IMAGES_DIR))
    return ReportPaths(html=html_path, markdown=md_path, images=images)
