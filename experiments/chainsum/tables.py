"""Markdown tables for docs/RESULTS.md from the outputs of sweep.py.

Usage: python experiments/chainsum/tables.py SWEEP_DIR [--setting metric:key=value,...]...
Prints: per-dataset accuracy and components; each baseline and DMC version (at its default
settings, and at each --setting given) with Spearman, Kendall and bootstrap CIs; the sweep's
Spearman grid for the default content selector and K.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd


def fmt(x: float, nd: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def corr_cell(r: pd.Series, m: str) -> str:
    return f"{fmt(r[m])} [{fmt(r[m + '_lo'])}, {fmt(r[m + '_hi'])}]"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep_dir")
    ap.add_argument("--setting", action="append", default=[], help="metric:key=value,... rows to pick from sweep.csv")
    ap.add_argument("--subset", default="all")
    ap.add_argument("--joint", help="another testbed's sweep dir: rank settings by the worse of the two Spearmans")
    a = ap.parse_args(argv)
    d = Path(a.sweep_dir)
    comp = pd.read_csv(d / "components.csv")
    base = pd.read_csv(d / "baselines.csv")
    sweep = pd.read_csv(d / "sweep.csv")

    cols = [c for c in ("accuracy", "dmc", "dmc_v2", "Q", "A", "C_D", "C_T", "R", "R2", "logit_gap", "rsr", "ifd",
                        "mean_logprob", "length") if c in comp]
    print("| dataset | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for _, r in comp.sort_values("accuracy", ascending=False).iterrows():
        print(f"| {r['dataset']} | " + " | ".join(fmt(r[c], 3) for c in cols) + " |")
    print()
    print("| metric (version, settings) | direction | Spearman [95% CI] | Kendall [95% CI] | n |")
    print("|---|---|---|---|---|")
    for _, r in base[base.subset == a.subset].iterrows():
        print(f"| {r['metric']} ({r['version']}, defaults) | {r['direction']} | {corr_cell(r, 'spearman')} | "
              f"{corr_cell(r, 'kendall')} | {r['n']} |")
    for spec in a.setting:
        metric, _, kv = spec.partition(":")
        sel = (sweep.metric == metric) & (sweep.subset == a.subset)
        for item in filter(None, kv.split(",")):
            k, _, v = item.partition("=")
            col = sweep[k]
            sel &= (col.astype(float) == float(v)) if pd.api.types.is_numeric_dtype(col) else (col.astype(str) == v)
        for _, r in sweep[sel].iterrows():
            print(f"| {metric} ({r['version']}, {kv}) | higher | {corr_cell(r, 'spearman')} | "
                  f"{corr_cell(r, 'kendall')} | {r['n']} |")
    print()
    for metric, width in (("dmc", "sigma"), ("dmc_v2", "sigma_logit")):
        s = sweep[(sweep.metric == metric) & (sweep.subset == a.subset)]
        if s.empty:
            continue
        keys = ["content", "top_k"] + (["match_side"] if "match_side" in s and s["match_side"].notna().any() else [])
        for key, g in s.groupby(keys):
            p = g.pivot_table(index="epsilon", columns=width, values="spearman")
            label = ", ".join(f"{k}={v}" for k, v in zip(keys, key))
            print(f"{metric}, {label}: Spearman by epsilon (rows) x {width} (columns)")
            print("| ε \\ " + width + " | " + " | ".join(str(c) for c in p.columns) + " |")
            print("|---" * (len(p.columns) + 1) + "|")
            for eps, row in p.iterrows():
                print(f"| {eps} | " + " | ".join(fmt(v) for v in row) + " |")
            print()
    if a.joint:
        other = pd.read_csv(Path(a.joint) / "sweep.csv")
        keys = ["metric", "content", "top_k", "epsilon", "sigma", "sigma_logit", "match_side"]
        keys = [k for k in keys if k in sweep and k in other]
        j = sweep[sweep.subset == a.subset].merge(other[other.subset == a.subset], on=keys, suffixes=("", "_other"))
        j["worst"] = j[["spearman", "spearman_other"]].min(axis=1)
        j = j.sort_values(["worst", "spearman"], ascending=False)
        print("settings ranked by the worse Spearman of the two testbeds (this | other):")
        print("| " + " | ".join(keys) + " | Spearman here | Spearman other | worse |")
        print("|---" * (len(keys) + 3) + "|")
        for _, r in j.head(12).iterrows():
            print("| " + " | ".join(str(r[k]) for k in keys) + f" | {fmt(r['spearman'])} | {fmt(r['spearman_other'])} | "
                  f"{fmt(r['worst'])} |")


if __name__ == "__main__":
    main()
