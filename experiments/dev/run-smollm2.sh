#!/usr/bin/env bash
# A development family with SmolLM2-135M as the student (docs/RESULTS.md, "Content for any
# reasoning"): build it (seed 0, 11 datasets x 128 rows, N_EVAL eval questions), run E1 with
# experiments/dev/validate-smollm2.yaml, then the offline sweep of experiments/grid-content.json.
# Usage: experiments/dev/run-smollm2.sh [FAMILY [RUN_DIR [N_EVAL]]]
#   (default wordops, runs/dev-smollm2, 64; boolchain's true/false answers are guessed half the time,
#   so its run uses 96 eval questions)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
from_root() { local p; case "$1" in /*) p="$1" ;; *) p="$PWD/$1" ;; esac; echo "${p#"$ROOT"/}"; }
FAM="${1:-wordops}"; RUN=runs/dev-smollm2; N_EVAL="${3:-64}"
[ -z "${2:-}" ] || RUN="$(from_root "$2")"
cd "$ROOT"
DMC=.venv/bin/dmc; [ -x "$DMC" ] || DMC=dmc
PY=.venv/bin/python; [ -x "$PY" ] || PY=python3
[ -f "$RUN/data/$FAM/eval.jsonl" ] || "$DMC" lab build --out "$RUN/data" --task "$FAM" --n 128 --n-eval "$N_EVAL" --seed 0
out="$RUN/$FAM-smollm2"
"$DMC" validate "$RUN/data/$FAM/pool" --eval "$RUN/data/$FAM/eval.jsonl" --out "$out" \
  --config experiments/dev/validate-smollm2.yaml > "$out.log" 2>&1
mkdir -p "$RUN/sweep"
[ -f "$RUN/sweep/$FAM-smollm2/sweep.csv" ] || "$PY" experiments/chainsum/sweep.py --run "$out" --n-boot 200 \
  --grid experiments/grid-content.json --out "$RUN/sweep/$FAM-smollm2" > "$RUN/sweep/$FAM-smollm2.log" 2>&1
