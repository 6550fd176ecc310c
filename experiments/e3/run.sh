#!/usr/bin/env bash
# E3 on the lab (docs/RESULTS.md, "E3"): for each family, one `dmc validate --config
# experiments/e3/validate.yaml` run with lab-small, then the oracle table (experiments/e3/oracle.py).
# Usage: experiments/e3/run.sh [RUN_DIR [CONFIG [STUDENT [VALIDATE_OPTIONS...]]]]   (default runs/e3,
#        experiments/e3/validate.yaml, lab-small). The lab data is built (or reused) in RUN_DIR/data; a rerun
#        resumes from the pilot cache. VALIDATE_OPTIONS override the config; the long runs of docs/RESULTS.md:
#   experiments/e3/run.sh runs/e3-long experiments/e3/validate.yaml lab-small --e3-steps 720 --e3-eval-every 120 \
#     --e3-strategies "uniform;static-dmc;dynamic-dmc;schedule:stepwise;schedule:easy-stepwise,stepwise@0.5"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
from_root() { local p; case "$1" in /*) p="$1" ;; *) p="$PWD/$1" ;; esac; echo "${p#"$ROOT"/}"; }
RUN=runs/e3; CONFIG=experiments/e3/validate.yaml; STUDENT="${3:-lab-small}"
[ -z "${1:-}" ] || RUN="$(from_root "$1")"
[ -z "${2:-}" ] || CONFIG="$(from_root "$2")"
shift $(( $# < 3 ? $# : 3 ))
cd "$ROOT"
DMC=.venv/bin/dmc; [ -x "$DMC" ] || DMC=dmc
PY=.venv/bin/python; [ -x "$PY" ] || PY=python
mkdir -p "$RUN"
[ -f "$RUN/data/lab.json" ] || "$DMC" lab build --out "$RUN/data" --n 192 --n-eval 96 --seed 0
runs=()
for fam in arith listops; do
  out="$RUN/$fam-$STUDENT"
  echo "$(date +%H:%M:%S) E3 $fam x $STUDENT -> $out (log: $out.log)"
  "$DMC" validate "$RUN/data/$fam/pool" --student "$STUDENT" --eval "$RUN/data/$fam/eval.jsonl" --out "$out" \
    --cache "$RUN/cache" --config "$CONFIG" "$@" > "$out.log" 2>&1
  runs+=("$out")
done
"$PY" experiments/e3/oracle.py "${runs[@]}"
