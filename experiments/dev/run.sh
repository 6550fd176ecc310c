#!/usr/bin/env bash
# Development families beyond the students' pretraining (docs/RESULTS.md, "Content for any
# reasoning"; experiments/README.md): build each family with `dmc lab build --task FAMILY` (seed 0,
# 11 candidate datasets x 192 rows, 96 eval questions), then for every (family, student) one E1
# run of `dmc validate --config experiments/lab/validate.yaml --experiments e1` (the lab's budget:
# one pilot per dataset and seed, 2 seeds), then the offline sweep of experiments/grid-content.json
# on each run.
# Usage: experiments/dev/run.sh [RUN_DIR [FAMILIES [STUDENTS [VALIDATE_OPTIONS...]]]]
#   defaults: runs/dev, "wordops", "lab-small"; a rerun resumes (statistics and pilots are cached).
#   VALIDATE_OPTIONS override the config, e.g. the long-trace family's budgets (experiments/dev/run-long.sh):
#   experiments/dev/run.sh runs/dev bubblesort lab-small --max-length 512 --eval-max-new-tokens 448 \
#     --attempt-max-new-tokens 448
# Statistics are cached in runs/lab/cache, shared with experiments/lab/run.sh.
# Writes RUN_DIR/data/<family>/, RUN_DIR/<family>-<student>/ (+ .log) and
# RUN_DIR/sweep/<family>-<student>/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
from_root() { local p; case "$1" in /*) p="$1" ;; *) p="$PWD/$1" ;; esac; echo "${p#"$ROOT"/}"; }
RUN=runs/dev; FAMILIES="wordops"; STUDENTS="lab-small"
[ -z "${1:-}" ] || RUN="$(from_root "$1")"
[ -z "${2:-}" ] || FAMILIES="$2"
[ -z "${3:-}" ] || STUDENTS="$3"
shift $(( $# < 3 ? $# : 3 ))
cd "$ROOT"
DMC=.venv/bin/dmc; [ -x "$DMC" ] || DMC=dmc
PY=.venv/bin/python; [ -x "$PY" ] || PY=python3
mkdir -p "$RUN/sweep"
for fam in $FAMILIES; do
  [ -f "$RUN/data/$fam/eval.jsonl" ] || "$DMC" lab build --out "$RUN/data" --task "$fam" --n 192 --n-eval 96 --seed 0
  for st in $STUDENTS; do
    out="$RUN/$fam-$st"
    echo "$(date +%H:%M:%S) $fam x $st -> $out (log: $out.log)"
    "$DMC" validate "$RUN/data/$fam/pool" --student "$st" --eval "$RUN/data/$fam/eval.jsonl" --out "$out" \
      --cache runs/lab/cache --config experiments/lab/validate.yaml --experiments e1 "$@" > "$out.log" 2>&1
    [ -f "$RUN/sweep/$fam-$st/sweep.csv" ] || "$PY" experiments/chainsum/sweep.py --run "$out" --n-boot 200 \
      --grid experiments/grid-content.json --out "$RUN/sweep/$fam-$st" > "$RUN/sweep/$fam-$st.log" 2>&1
  done
done
