#!/usr/bin/env bash
# The lab, both students x both task families (docs/RESULTS.md, "Lab"; experiments/README.md):
# build the lab once (seed 0: 11 candidate datasets x 192 rows and 96 eval questions per family),
# then for every (family, student) one `dmc validate --config experiments/lab/validate.yaml` run —
# E1 (one pilot per candidate dataset and seed), E2 (top-1 selection by every metric; it reuses E1's
# pilots), E3 (uniform / static-dmc / dynamic-dmc, equal steps) — and one report comparing them.
# The config holds the whole budget; the runs differ only in pool, eval set, student and run
# directory, given here on the command line.
# Usage: experiments/lab/run.sh [RUN_DIR [CONFIG]]   (default runs/lab and experiments/lab/validate.yaml;
#        a rerun resumes: statistics and pilots are cached). Writes RUN_DIR/data (the lab),
#        RUN_DIR/cache (statistics), RUN_DIR/<family>-<student>/ (+ .log) and RUN_DIR/report/compare.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# a path given on the command line, as seen from the repository root (relative when inside it)
from_root() { local p; case "$1" in /*) p="$1" ;; *) p="$PWD/$1" ;; esac; echo "${p#"$ROOT"/}"; }
RUN=runs/lab; CONFIG=experiments/lab/validate.yaml
[ -z "${1:-}" ] || RUN="$(from_root "$1")"
[ -z "${2:-}" ] || CONFIG="$(from_root "$2")"
cd "$ROOT"
DMC=.venv/bin/dmc; [ -x "$DMC" ] || DMC=dmc
[ -f "$CONFIG" ] || { echo "config not found: $CONFIG" >&2; exit 2; }
mkdir -p "$RUN"

[ -f "$RUN/data/lab.json" ] || "$DMC" lab build --out "$RUN/data" --n 192 --n-eval 96 --seed 0

runs=()
for fam in listops arith; do
  for st in lab-small lab-base; do
    out="$RUN/$fam-$st"
    echo "$(date +%H:%M:%S) $fam x $st -> $out (log: $out.log)"
    "$DMC" validate "$RUN/data/$fam/pool" --student "$st" --eval "$RUN/data/$fam/eval.jsonl" --out "$out" \
      --cache "$RUN/cache" --config "$CONFIG" > "$out.log" 2>&1
    runs+=("$out")
  done
done
"$DMC" report "${runs[@]}" --out "$RUN/report" --title "DMC on the lab: 2 students x 2 task families"
