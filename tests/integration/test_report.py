import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from dmc.report import load_run, write_report
from dmc.report.plots import accuracy_curves, metric_scatter, selection_timeline
from dmc.validation import files
from dmc.io import atomic_write_json
from dmc.validation.summaries import e1_document, e1_tables, e2_document, e3_document, write_e1, write_json

METRICS = {
    "dmc": {"direction": "higher", "version": "dmc-v1.3"},
    "rsr": {"direction": "lower", "version": "rsr-v1"},
    "length": {"direction": "none", "version": "length-v1"},
    "ifd": {"direction": "higher", "version": "ifd-v1"},
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _synthetic_run(out, failed: bool = False):
    """A run directory as `dmc validate` writes it, from made-up pilot results."""
    rng = np.random.default_rng(0)
    names = [f"ds{i}" for i in range(6)]
    acc = np.array([0.2, 0.3, 0.45, 0.5, 0.7, 0.8])
    scores = pd.DataFrame({
        "dataset": names,
        "dmc": acc * 0.8 + rng.normal(0, 0.03, 6), "dmc_lo": acc * 0.7, "dmc_hi": acc * 0.9,
        "Q": [1, 0.9, 0.8, 1, 0.7, 1.0], "A": acc, "C_D": [0.3] * 6, "C_T": [0.3] * 6, "R": [1.0] * 6,
        "rsr": 3 - 2 * acc + rng.normal(0, 0.2, 6), "length": rng.integers(20, 90, 6).astype(float),
        "ifd": [np.nan] * 6,
    })
    pilots = [{"dataset": n, "seed": s, "accuracy": float(a + 0.02 * s), "status": "done", "error": None,
               "key": f"k{n}{s}", "seconds": 1.0} for n, a in zip(names, acc) for s in (0, 1)]
    if failed:
        pilots[0] = {**pilots[0], "accuracy": float("nan"), "status": "failed", "error": "RuntimeError: boom"}
    pdf, ds, corr, per_seed = e1_tables(pilots, scores, METRICS, n_boot=200)
    doc = e1_document(pdf, ds, corr, per_seed, METRICS, seeds=[0, 1], ci=0.95, initial_accuracy=0.1,
                      train={"steps": 20, "batch_size": 4, "learning_rate": 1e-3}, student={"name": "tiny", "fingerprint": "f"})
    write_e1(out, doc, pdf, corr)
    atomic_write_json(out / files.SCORES_DIR / "datasets.json",
                      {"meta": {"metrics": METRICS, "student": {"name": "tiny", "fingerprint": "f"},
                                "settings": {"budget": 96}},
                       "datasets": scores.to_dict(orient="records")})
    sels = [{"metric": m, "direction": METRICS[m]["direction"], "chosen": [c], "n_samples": 32,
             "per_seed": [{"seed": 0, "accuracy": a, "status": "done"}]}
            for m, c, a in (("dmc", "ds5", 0.8), ("rsr", "ds4", 0.7), ("length", "ds1", 0.3))]
    write_json(out, files.E2_JSON, e2_document(sels, ds, initial_accuracy=0.1, policy="top1", train={"steps": 20}))
    mix = lambda w: {n: x for n, x in zip(names, w)}  # noqa: E731
    runs = {
        "uniform": [{"seed": 0, "accuracy": 0.5, "status": "done",
                     "curve": [{"step": 0, "accuracy": 0.1}, {"step": 10, "accuracy": 0.4}, {"step": 20, "accuracy": 0.5}],
                     "mixtures": [{"step": 0, "mixture": mix([1 / 6] * 6)}]}],
        "dynamic-dmc": [{"seed": 0, "accuracy": 0.75, "status": "done",
                         "curve": [{"step": 0, "accuracy": 0.1}, {"step": 10, "accuracy": 0.6}, {"step": 20, "accuracy": 0.75}],
                         "mixtures": [{"step": 0, "mixture": mix([0, 0, 0, 0, 0, 1])},
                                      {"step": 10, "mixture": mix([0, 0, 0, 0, 1, 0])}],
                         "scores": [{"step": 0, "scores": mix(acc)}, {"step": 10, "scores": mix(acc[::-1])}]}],
    }
    write_json(out, files.E3_JSON, e3_document(runs, steps=20, seeds=[0]))
    return out


def test_report_files_and_content(tmp_path):
    run = _synthetic_run(tmp_path / "run")
    paths = write_report(run)
    assert paths.html == run / "report" / "report.html"
    text = paths.html.read_text()
    # self-contained: every image is an embedded PNG, nothing refers to a file
    srcs = re.findall(r'<img src="([^"]+)"', text)
    # scatter, DMC components, E2 bars, E3 curves, DMC over training, one timeline per strategy (2)
    assert len(srcs) == 7
    assert len(paths.images) == 7
    for s in srcs:
        assert s.startswith("data:image/png;base64,")
        assert base64.b64decode(s.split(",", 1)[1])[:8] == PNG_MAGIC
    assert "<script" not in text and "http" not in text.replace("https://", "").split("<body>")[0]
    # the headline table: DMC is ranked first (it tracks accuracy), RSR's negative rho is shown signed
    md = paths.markdown.read_text()
    first = next(ln for ln in md.splitlines() if ln.startswith("| dmc |"))
    header = md.index("| metric | direction | Spearman ρ |")
    assert md.index("| dmc |", header) < md.index("| rsr |", header) < md.index("| ifd |", header)
    assert "↑ higher is better" in first
    rsr = next(ln for ln in md.splitlines() if ln.startswith("| rsr |"))
    m = re.search(r"\| -(\d\.\d\d) \[[^]]*\] \| \+(\d\.\d\d) \|", rsr)
    assert m and m.group(1) == m.group(2)  # negative rho, shown positive once signed for direction
    assert "ifd: metric is constant" in md or "ifd: only 0 pair" in md
    # every image referenced by the Markdown exists beside it
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(refs) == 7
    for r in refs:
        assert (paths.markdown.parent / r).read_bytes()[:8] == PNG_MAGIC
    assert "oracle (best single dataset in E1): ds5 at 81.0%" in md
    assert "| dynamic-dmc | 75.0% |" in md
    # the two seeds rank the datasets alike, so seed noise does not cap the correlations
    assert "agree with Spearman +1.00 on average" in md and "about ρ 1.00 against the mean over 2 seeds" in md
    assert "scored at a generation budget of 96 tokens" in md  # the budget DMC was scored at


def test_report_without_e2_e3_and_with_failures(tmp_path):
    run = _synthetic_run(tmp_path / "run", failed=True)
    (run / files.E2_JSON).unlink()
    (run / files.E3_JSON).unlink()
    paths = write_report(run, tmp_path / "out")
    md = paths.markdown.read_text()
    assert "## E2" not in md and "## E3" not in md
    assert "| e1 | ds0 | 0 | RuntimeError: boom |" in md
    r = load_run(run)
    assert r.experiments == ["e1"]
    ds0 = next(d for d in r.e1["datasets"] if d["dataset"] == "ds0")
    assert ds0["n_seeds"] == 1 and ds0["n_failed"] == 1 and ds0["accuracy"] == pytest.approx(0.22)


def test_failures_table_lists_a_selector_that_could_not_select(tmp_path):
    run = _synthetic_run(tmp_path / "run")
    doc = json.loads((run / files.E2_JSON).read_text())
    doc["selectors"].append({"metric": "ifd", "direction": "higher", "chosen": None, "per_seed": [],
                             "error": "metric 'ifd' was not computed", "accuracy": None})
    doc["selectors"][1]["per_seed"] = [{"seed": 0, "accuracy": None, "status": "failed", "error": "OSError: disk"}]
    write_json(run, files.E2_JSON, doc)
    md = write_report(run, tmp_path / "out").markdown.read_text()
    assert "| e2 | chosen by ifd |  | metric 'ifd' was not computed |" in md
    assert "| e2 | chosen by rsr | 0 | OSError: disk |" in md


def test_load_run_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no validation results"):
        load_run(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / files.E2_JSON).write_text("{\n oops")
    with pytest.raises(ValueError, match=r"e2.json:2: not valid JSON"):
        load_run(tmp_path / "bad")


def test_plot_functions_handle_empty_input():
    assert accuracy_curves({}) is None
    assert accuracy_curves({"a": [{"step": 0, "accuracy": None}]}) is None
    assert selection_timeline([]) is None
    assert metric_scatter(pd.DataFrame({"dataset": ["a"], "accuracy": [0.5]}), ["dmc"], {}) is None
    png = metric_scatter(pd.DataFrame({"dataset": ["a", "b"], "accuracy": [0.5, 0.6], "dmc": [np.nan, np.nan]}),
                         ["dmc"], {"dmc": (float("nan"), None, None)})
    assert png[:8] == PNG_MAGIC


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Marks each <img> once it has decoded with a non-zero size, then lists the result in the DOM.
_CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img'); var ok = 0;
  imgs.forEach(function (im) { if (im.complete && im.naturalWidth > 0) { im.setAttribute('data-loaded', '1'); ok++; } });
  document.body.setAttribute('data-images', imgs.length + '/' + ok);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_every_image_loads_in_headless_chromium(tmp_path):
    run = _synthetic_run(tmp_path / "run")
    paths = write_report(run)
    page = tmp_path / "page.html"
    page.write_text(paths.html.read_text().replace("</body>", _CHECK + "</body>"))
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           "--virtual-time-budget=5000", "--dump-dom", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    imgs = re.findall(r"<img\b[^>]*>", dom)
    assert len(imgs) == 7
    assert all('data-loaded="1"' in im for im in imgs), [im[:60] + im[-40:] for im in imgs if 'data-loaded' not in im]
    assert 'data-images="7/7"' in dom


def test_compare_runs_side_by_side(tmp_path):
    from dmc.report import compare_markdown

    a = _synthetic_run(tmp_path / "a")
    b = _synthetic_run(tmp_path / "b", failed=True)
    for d, st in ((a, "lab-small"), (b, "lab-base")):
        atomic_write_json(d / files.MANIFEST, {"student": {"name": st}, "eval": {"source": f"/lab/{d.name}fam/eval.jsonl"},
                                               "command": f"dmc validate --student {st}"})
    old = json.loads((a / files.E1_JSON).read_text())  # a run written before e1.json held the seed agreement
    del old["seed_agreement"]
    atomic_write_json(a / files.E1_JSON, old)
    md = compare_markdown([a, b])
    assert "| metric | direction | lab-small / afam | lab-base / bfam | mean signed ρ |" in md
    assert "| noise ceiling (seeds) |  | 1.00 | 1.00 |  |" in md  # both runs' seeds rank the datasets alike
    assert "| metric | direction | lab-small / afam | lab-base / bfam | mean signed τ |" in md  # Kendall
    assert "| metric | direction | lab-small / afam | lab-base / bfam | mean signed r |" in md  # Pearson
    dmc_row = next(ln for ln in md.splitlines() if ln.startswith("| dmc |"))
    ifd_row = next(ln for ln in md.splitlines() if ln.startswith("| ifd |"))
    assert md.index(dmc_row) < md.index(ifd_row)  # ordered by mean signed rho; undefined last
    assert dmc_row.endswith("| +1.00 |")
    assert "| best single dataset (E1) | 81.0% (ds5) |" in md
    assert "| dynamic-dmc | 75.0% | 75.0% |" in md
    # E1 accuracy per dataset (b's ds0 has one finished seed), spreads and how alike the runs rank the data
    assert "| spread (best − worst) | 60.0 points (ds5 − ds0) | 59.0 points (ds5 − ds0) |" in md
    assert "| lab-small / afam | lab-base / bfam | 6 | +1.00 |" in md
    assert md.index("| ds5 |") < md.index("| ds0 |")
