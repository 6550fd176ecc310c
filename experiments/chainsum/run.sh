#!/usr/bin/env bash
# Chain-sum testbed, end to end with the project's own commands (docs/RESULTS.md, "Chain-sum testbed").
#   1. generate the 10 candidate datasets + eval set with the shared generator (never copied here);
#   2. score every metric on the untouched student (`dmc score`), in the background;
#   3. E1: one identical LoRA pilot per dataset (`dmc validate --experiments e1`); the metrics are
#      not recomputed there (--metrics random,teacher_accuracy needs no forward pass); once step 2
#      is done, the same E1 again with every metric (cached pilots and statistics: seconds) writes
#      e1.json and report/ with DMC's correlations;
#   4. correlate every metric, and every swept DMC setting/version, with the E1 accuracies
#      offline from the cached tables (experiments/chainsum/sweep.py).
# Usage: experiments/chainsum/run.sh [RUN_DIR]   (default RUN_DIR=runs/chainsum; a rerun resumes:
#        statistics and finished pilots are cached)
# Env: DMC (the dmc command), PY (python), N / N_EVAL / SEED (generator), STEPS, EVAL_TOKENS,
#      SCORE_SAMPLES (samples per dataset scored), WORKERS (pilot processes), SEEDS (pilot seeds).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN="${1:-$ROOT/runs/chainsum}"
DMC="${DMC:-$ROOT/.venv/bin/dmc}"
PY="${PY:-$ROOT/.venv/bin/python}"
GEN="$ROOT/../shared/testbeds/chainsum.py"
N="${N:-128}"; N_EVAL="${N_EVAL:-96}"; SEED="${SEED:-0}"
# Pilot budget: DESIGN.md §8's, 32 steps (two epochs of the 128 rows) on all 96 eval questions;
# about 65 min for 3 seeds x 10 datasets on 2 CPU cores. The pilots and the metrics' target (C_T)
# use the first PILOT_EVAL eval questions. STEPS=16 PILOT_EVAL=64 is the cheaper, noisier run.
STEPS="${STEPS:-32}"; EVAL_TOKENS="${EVAL_TOKENS:-128}"; SCORE_SAMPLES="${SCORE_SAMPLES:-64}"
PILOT_EVAL="${PILOT_EVAL:-96}"; WORKERS="${WORKERS:-2}"; SEEDS="${SEEDS:-0,1,2}"
mkdir -p "$RUN"
[ -f "$GEN" ] || { echo "shared generator not found: $GEN" >&2; exit 2; }

# 1. testbed (deterministic for a given seed)
[ -f "$RUN/data/eval.jsonl" ] || "$PY" "$GEN" "$RUN/data" --n "$N" --n-eval "$N_EVAL" --seed "$SEED"

head -n "$PILOT_EVAL" "$RUN/data/eval.jsonl" > "$RUN/data/eval-pilot.jsonl"

# 2. all metrics on the untouched student; greedy attempts (K=1) give capability
"$DMC" score "$RUN/data/pool" --student smollm2-135m --eval "$RUN/data/eval-pilot.jsonl" \
  --out "$RUN/score" --cache "$RUN/cache" --max-samples "$SCORE_SAMPLES" --max-new-tokens "$EVAL_TOKENS" \
  --no-progress > "$RUN/score.log" 2>&1 &
SCORE_PID=$!

# 3. E1: LoRA r16 (alpha 32, all linear layers), lr 1e-3, batch 8, STEPS steps, 128 rows per dataset
E1=("$DMC" validate "$RUN/data/pool" --student smollm2-135m --eval "$RUN/data/eval-pilot.jsonl"
    --experiments e1 --lora-r 16 --lr 1e-3 --batch-size 8 --steps "$STEPS" --pilot-samples 128
    --max-length 256 --eval-max-new-tokens "$EVAL_TOKENS" --seeds "$SEEDS" --workers "$WORKERS"
    --threads 1 --out "$RUN/validate" --no-progress)
"${E1[@]}" --metrics random,teacher_accuracy --no-report
wait "$SCORE_PID"

# 3b. the same E1 with every metric, and its report: pilots and statistics come from the caches
"${E1[@]}" --max-samples "$SCORE_SAMPLES" --attempts-max-new-tokens "$EVAL_TOKENS" --cache-dir "$RUN/cache"

# 4. offline correlations of every metric and DMC setting/version with the E1 accuracies
"$PY" "$ROOT/experiments/chainsum/sweep.py" --pool "$RUN/data/pool" --eval "$RUN/data/eval-pilot.jsonl" \
  --cache "$RUN/cache" --e1 "$RUN/validate/e1.json" --max-samples "$SCORE_SAMPLES" \
  --attempts-max-new-tokens "$EVAL_TOKENS" --n-boot 1000 --grid "$(cat "$ROOT/experiments/grid.json")" \
  --out "$RUN/sweep-joint"
"$PY" "$ROOT/experiments/chainsum/tables.py" "$RUN/sweep-joint" > "$RUN/tables.md"
