#!/usr/bin/env bash
# Capability from attempts or from the gold answer's likelihood (docs/RESULTS.md, "Capability without
# generation"): every setting of experiments/grid-capability.json on each development run that has
# E1 accuracies, then the joint ranking (experiments/joint.py). The sweeps read each run's cached
# statistics; the answer likelihoods (one short forward pass per question) are computed into the
# run's cache the first time.
# Usage: experiments/dev/capability.sh [OUT_DIR [GRID]]   (default runs/capability, experiments/grid-capability.json;
#        experiments/grid-continuations.json compares the content selectors the same way)
# Runs used when present (each made by the command in experiments/README.md):
#   runs/lab/{arith,listops}-lab-small, runs/lab/listops-lab-base    experiments/lab/run.sh
#   runs/dev/{wordops,boolchain}-lab-small                           experiments/dev/run.sh runs/dev "wordops boolchain"
#   runs/dev/bubblesort-lab-small, runs/dev/bubblesort-lab-base       experiments/dev/run-long.sh; experiments/dev/run-long.sh runs/dev lab-base 0,1
#   runs/dev-smollm2/wordops-smollm2                                 experiments/dev/run-smollm2.sh wordops
#   runs/dev-smollm2/boolchain-smollm2                               experiments/dev/run-smollm2.sh boolchain runs/dev-smollm2 96
#   chain-sum (experiments/chainsum/validate.yaml)                   experiments/chainsum/run.sh
# Chain-sum's statistics are needed (runs/chainsum/cache); its accuracies are the run's e1.json, or,
# without one, experiments/chainsum/e1-accuracy.json (the 3-seed means docs/RESULTS.md publishes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="${1:-runs/capability}"
PY=.venv/bin/python; [ -x "$PY" ] || PY=python3
GRID="${2:-experiments/grid-capability.json}"
mkdir -p "$OUT"
specs=()
for run in runs/lab/arith-lab-small runs/lab/listops-lab-small runs/lab/listops-lab-base runs/dev/wordops-lab-small \
           runs/dev-smollm2/wordops-smollm2 runs/dev/boolchain-lab-small runs/dev-smollm2/boolchain-smollm2 \
           runs/dev/bubblesort-lab-small runs/dev/bubblesort-lab-base; do
  name="$(basename "$run")"
  if [ ! -f "$run/e1.json" ]; then echo "skip $name: no $run/e1.json" >&2; continue; fi
  [ -f "$OUT/$name/sweep.csv" ] || "$PY" experiments/chainsum/sweep.py --run "$run" --n-boot 200 --grid "$GRID" \
    --out "$OUT/$name" > "$OUT/$name.log" 2>&1
  specs+=("$name=$OUT/$name")
done
if [ -d runs/chainsum/cache ] && [ -f runs/chainsum/lab/chainsum/eval.jsonl ]; then
  acc=(); [ -f runs/chainsum/validate/e1.json ] || acc=(--acc experiments/chainsum/e1-accuracy.json)
  [ -f "$OUT/chainsum-smollm2/sweep.csv" ] || "$PY" experiments/chainsum/sweep.py --config experiments/chainsum/validate.yaml \
    "${acc[@]}" --n-boot 200 --grid "$GRID" --out "$OUT/chainsum-smollm2" > "$OUT/chainsum-smollm2.log" 2>&1
  specs+=("chainsum-smollm2=$OUT/chainsum-smollm2")
else
  echo "skip chain-sum: run experiments/chainsum/run.sh first" >&2
fi
"$PY" experiments/joint.py "${specs[@]}" --csv "$OUT/joint.csv" --top 25
