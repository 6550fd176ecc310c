#!/usr/bin/env bash
# E3 with SmolLM2-135M on the chain-sum testbed (docs/RESULTS.md, "E3"): builds the testbed
# (`dmc lab build --task chainsum --n 128 --n-eval 64`, the 16-step chain-sum run's data), runs
# `dmc validate --config experiments/e3/validate-smollm2.yaml`, then the oracle table.
# Usage: experiments/e3/run-smollm2.sh [RUN_DIR]   (default runs/e3-smollm2; a rerun resumes)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN="${1:-runs/e3-smollm2}"
cd "$ROOT"
DMC=.venv/bin/dmc; [ -x "$DMC" ] || DMC=dmc
PY=.venv/bin/python; [ -x "$PY" ] || PY=python
[ -f "$RUN/lab/lab.json" ] || "$DMC" lab build --out "$RUN/lab" --task chainsum --n 128 --n-eval 64 --seed 0
out="$RUN/chainsum-smollm2"
echo "$(date +%H:%M:%S) E3 chainsum x smollm2-135m -> $out (log: $out.log)"
"$DMC" validate "$RUN/lab/chainsum/pool" --eval "$RUN/lab/chainsum/eval.jsonl" --out "$out" \
  --config experiments/e3/validate-smollm2.yaml > "$out.log" 2>&1
"$PY" experiments/e3/oracle.py "$out"
