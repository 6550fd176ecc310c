#!/usr/bin/env bash
# The long-trace development family (docs/RESULTS.md, "A long-trace family"): bubblesort, E1 at
# budgets that hold its traces (prompt + trace up to 512 tokens in training and scoring; 448 new
# tokens for the eval answers and the attempts), then the content sweep.
# Usage: experiments/dev/run-long.sh [RUN_DIR [STUDENT [SEEDS]]]
#   defaults: runs/dev, lab-small, 0,1,2,3 (the lab-base run: experiments/dev/run-long.sh runs/dev lab-base 0,1);
#   a rerun resumes (statistics and pilots are cached).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec "$ROOT/experiments/dev/run.sh" "${1:-runs/dev}" bubblesort "${2:-lab-small}" --max-length 512 \
  --eval-max-new-tokens 448 --attempt-max-new-tokens 448 --seeds "${3:-0,1,2,3}"
