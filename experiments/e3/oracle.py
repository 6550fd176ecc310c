"""E3's table with the hindsight oracle: for each run directory (a `dmc validate` output with e3.json),
every strategy's final accuracy (mean +- std over seeds), the oracle (the best strategy by mean final
accuracy, chosen after the fact among the fixed schedules and the static choices), and
dynamic-dmc's gap to static-dmc with the seed noise it is judged against.

    python experiments/e3/oracle.py runs/e3/arith-lab-small runs/e3/listops-lab-small [--markdown]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np


def _accs(st: dict) -> list[float]:
    return [float(p["accuracy"]) for p in st.get("per_seed") or [] if p.get("accuracy") is not None]


def summarize(run: Path) -> dict:
    doc = json.loads((run / "e3.json").read_text())
    strategies = doc["strategies"]
    rows = {name: _accs(st) for name, st in strategies.items()}
    hindsight = {n: a for n, a in rows.items() if a and n != "dynamic-dmc"}
    oracle = max(hindsight, key=lambda n: np.mean(hindsight[n])) if hindsight else None
    dyn, sta = rows.get("dynamic-dmc") or [], rows.get("static-dmc") or []
    gap = float(np.mean(dyn) - np.mean(sta)) if dyn and sta else math.nan
    # the seed noise of a difference of two means over n seeds: sqrt(sd_a^2/n + sd_b^2/n)
    noise = (math.sqrt(np.var(dyn, ddof=1) / len(dyn) + np.var(sta, ddof=1) / len(sta))
             if len(dyn) > 1 and len(sta) > 1 else math.nan)
    return {"run": str(run), "steps": doc.get("steps"), "initial_accuracy": doc.get("initial_accuracy"),
            "strategies": {n: {"mean": float(np.mean(a)) if a else None, "std": float(np.std(a, ddof=1)) if len(a) > 1 else None,
                               "n": len(a), "rescore_noise": strategies[n].get("rescore_noise")} for n, a in rows.items()},
            "oracle": oracle, "dynamic_minus_static": gap, "gap_noise": noise}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, help="also write the summaries here")
    args = ap.parse_args()
    out = [summarize(r) for r in args.runs]
    for s in out:
        print(f"\n{s['run']} ({s['steps']} steps; initial student {100 * (s['initial_accuracy'] or 0):.1f}%)")
        print("| strategy | final accuracy (mean ± std) | seeds | re-score noise |\n|---|---|---|---|")
        for name, r in s["strategies"].items():
            mark = " (oracle)" if name == s["oracle"] else ""
            acc = "n/a" if r["mean"] is None else f"{100 * r['mean']:.1f}%" + (f" ± {100 * r['std']:.1f}" if r["std"] is not None else "")
            noise = "" if r["rescore_noise"] is None else f"{r['rescore_noise']:.3f}"
            print(f"| {name}{mark} | {acc} | {r['n']} | {noise} |")
        if math.isfinite(s["dynamic_minus_static"]):  # a run without both strategies has no gap to show
            print(f"dynamic-dmc - static-dmc: {100 * s['dynamic_minus_static']:+.1f} points "
                  f"(seed noise of the difference: {100 * s['gap_noise']:.1f})")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
