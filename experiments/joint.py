"""Rank DMC settings across several testbeds: the joint choice of defaults (docs/RESULTS.md).

Each argument is NAME=SWEEP_DIR, a directory written by experiments/chainsum/sweep.py (one testbed:
a student, a pool and its E1 accuracies). A setting's score is its worst Spearman over the
testbeds (ties broken by the mean), so that no testbed is overfit; the defaults' row and every
baseline are printed beside it for comparison.

Usage: python experiments/joint.py listops-lab-small=runs/lab/sweep/listops-lab-small ... \
           chainsum=runs/chainsum16/sweep-joint [--top 15] [--metric dmc_v2] [--csv OUT.csv]
       (experiments/lab/sweep.sh runs the sweeps and this.)
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

KEYS = ["metric", "content", "top_k", "format_share", "counters", "alignment", "epsilon", "sigma", "sigma_logit",
        "match_side", "capability", "budget"]


def fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.2f}"


def load(specs: list[str], subset: str) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(settings x testbeds Spearman table, baselines x testbeds table, testbed names)."""
    names, sweeps, bases = [], [], []
    for spec in specs:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"expected NAME=SWEEP_DIR, got {spec!r}")
        d = Path(path)
        sw = pd.read_csv(d / "sweep.csv")
        sw = sw[sw.subset == subset].copy()
        for k in KEYS:
            if k not in sw:  # a sweep from before the setting existed ran at its default
                sw[k] = "content" if k == "counters" else float("nan")
        sw[KEYS[1:]] = sw[KEYS[1:]].astype(str)  # NaN-safe join keys
        sweeps.append(sw.set_index(KEYS)["spearman"].rename(name))
        b = pd.read_csv(d / "baselines.csv")
        bases.append(b[b.subset == subset].set_index("metric")["spearman"].rename(name))
        names.append(name)
    table = pd.concat(sweeps, axis=1, join="inner")
    return table, pd.concat(bases, axis=1), names


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("testbeds", nargs="+", help="NAME=SWEEP_DIR")
    ap.add_argument("--subset", default="all")
    ap.add_argument("--metric", default=None, help="only this DMC version (dmc or dmc_v2)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--csv", default=None, help="write the full ranked table here")
    a = ap.parse_args(argv)
    table, base, names = load(a.testbeds, a.subset)
    if a.metric:
        table = table[table.index.get_level_values("metric") == a.metric]
    table["worst"] = table[names].min(axis=1)
    table["mean"] = table[names].mean(axis=1)
    table = table.sort_values(["worst", "mean"], ascending=False)
    if a.csv:
        table.reset_index().to_csv(a.csv, index=False)
    print(f"{len(table)} settings common to {len(names)} testbeds; Spearman ρ with post-training accuracy\n")
    print("| " + " | ".join(KEYS) + " | " + " | ".join(names) + " | worst | mean |")
    print("|---" * (len(KEYS) + len(names) + 2) + "|")
    for key, r in table.head(a.top).iterrows():
        print("| " + " | ".join(str(k) for k in key) + " | " + " | ".join(fmt(r[n]) for n in names)
              + f" | {fmt(r['worst'])} | {fmt(r['mean'])} |")
    print("\nmetrics at their defaults (baselines.csv; ρ signed as computed, direction not applied)\n")
    print("| metric | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for m, r in base.iterrows():
        print(f"| {m} | " + " | ".join(fmt(r[n]) for n in names) + " |")


if __name__ == "__main__":
    main()
