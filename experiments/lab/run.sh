#!/usr/bin/env bash
# The lab, both students x both task families, with the project's own commands
# (docs/RESULTS.md, "Lab"): build the lab once, then for every (family, student) one
# `dmc validate` run — E1 (one pilot per candidate dataset, SEEDS), E2 (top-1 selection by every
# metric; it reuses E1's pilots), E3 (uniform / static-dmc / dynamic-dmc, equal steps) — and one
# report comparing all runs.
# Usage: experiments/lab/run.sh [RUN_DIR]   (default runs/lab; a rerun resumes: pilots are cached)
# Env: DMC (the dmc command), FAMILIES, STUDENTS, SEEDS, N / N_EVAL (lab size), STEPS, LR, WORKERS,
#      EXPERIMENTS (e.g. e1 first: its pilots are reused by a later full run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN="${1:-$ROOT/runs/lab}"
DMC="${DMC:-$ROOT/.venv/bin/dmc}"
FAMILIES="${FAMILIES:-listops arith}"; STUDENTS="${STUDENTS:-lab-small lab-base}"
SEEDS="${SEEDS:-0,1}"; N="${N:-192}"; N_EVAL="${N_EVAL:-96}"; SEED="${SEED:-0}"
# The demo's "full" scale (src/dmc/validation/demo.py), with a second seed.
STEPS="${STEPS:-240}"; LR="${LR:-3e-3}"; WORKERS="${WORKERS:-2}"; EXPERIMENTS="${EXPERIMENTS:-e1,e2,e3}"
mkdir -p "$RUN"

[ -f "$RUN/data/lab.json" ] || "$DMC" lab build --out "$RUN/data" --n "$N" --n-eval "$N_EVAL" --seed "$SEED"

runs=()
for fam in $FAMILIES; do
  for st in $STUDENTS; do
    out="$RUN/$fam-$st"
    "$DMC" validate "$RUN/data/$fam/pool" --student "$st" --eval "$RUN/data/$fam/eval.jsonl" --out "$out" \
      --experiments "$EXPERIMENTS" --seeds "$SEEDS" --steps "$STEPS" --batch-size 16 --lr "$LR" --max-length 384 \
      --eval-max-new-tokens 96 --attempts-max-new-tokens 96 --pilot-samples "$N" --max-samples "$N" \
      --e3-steps "$STEPS" --e3-eval-every 60 --rescore-every 60 --probe-size 16 --target-size 24 \
      --workers "$WORKERS" --no-progress > "$out.log" 2>&1
    runs+=("$out")
  done
done
[ "$EXPERIMENTS" = e1,e2,e3 ] || exit 0
"$DMC" report "${runs[@]}" --out "$RUN/report" --title "DMC on the lab: 2 students x 2 task families"
