#!/usr/bin/env bash
# Offline sweep of the DMC settings (experiments/grid.json) on every lab run of experiments/lab/run.sh
# (the scoring settings, statistics cache, pool, eval set and E1 accuracies recorded by each run;
# no forward pass), then the joint ranking with a chain-sum sweep (docs/RESULTS.md, "Choosing the
# defaults"; experiments/README.md).
# Usage: experiments/lab/sweep.sh [RUN_DIR [CHAINSUM_SWEEP_DIR]]
#   RUN_DIR             the lab runs (default runs/lab)
#   CHAINSUM_SWEEP_DIR  the chain-sum testbed's sweep (default runs/chainsum16/sweep-joint: the
#                       16-step run the defaults were chosen with; runs/chainsum/sweep-joint for the
#                       check at DESIGN.md §8's budget); left out when it does not exist
# Writes RUN_DIR/sweep/<family>-<student>/ (sweep.csv, baselines.csv, components.csv; skipped when
# sweep.csv exists) and RUN_DIR/sweep/joint-<chain-sum run>.csv; prints the joint ranking.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
from_root() { local p; case "$1" in /*) p="$1" ;; *) p="$PWD/$1" ;; esac; echo "${p#"$ROOT"/}"; }
RUN=runs/lab; CS=runs/chainsum16/sweep-joint
[ -z "${1:-}" ] || RUN="$(from_root "$1")"
[ -z "${2:-}" ] || CS="$(from_root "$2")"
cd "$ROOT"
PY=.venv/bin/python; [ -x "$PY" ] || PY=python3
mkdir -p "$RUN/sweep"
beds=()
for fam in listops arith; do
  for st in lab-small lab-base; do
    name="$fam-$st"
    [ -f "$RUN/$name/validate.json" ] || { echo "no run $RUN/$name: skipped" >&2; continue; }
    [ -f "$RUN/sweep/$name/sweep.csv" ] || "$PY" experiments/chainsum/sweep.py --run "$RUN/$name" --n-boot 200 \
      --out "$RUN/sweep/$name" > "$RUN/sweep/$name.log" 2>&1
    beds+=("$name=$RUN/sweep/$name")
  done
done
joint="$RUN/sweep/joint.csv"
if [ -f "$CS/sweep.csv" ]; then
  beds+=("chainsum=$CS")
  joint="$RUN/sweep/joint-$(basename "$(dirname "$CS")").csv"
else
  echo "no chain-sum sweep at $CS: the joint ranking is over the lab runs only" >&2
fi
[ "${#beds[@]}" -gt 0 ] || { echo "no lab runs under $RUN (run experiments/lab/run.sh first)" >&2; exit 2; }
"$PY" experiments/joint.py "${beds[@]}" --csv "$joint"
