#!/usr/bin/env bash
# The long-trace development family (docs/RESULTS.md, "A long-trace family"): bubblesort with
# lab-small, E1 with 4 pilot seeds, at budgets that hold its traces (prompt + trace up to 512 tokens
# in training and scoring; 448 new tokens for the eval answers and the attempts), then the content
# sweep. Usage: experiments/dev/run-long.sh [RUN_DIR]   (default runs/dev; a rerun resumes)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec "$ROOT/experiments/dev/run.sh" "${1:-runs/dev}" bubblesort lab-small --max-length 512 \
  --eval-max-new-tokens 448 --attempt-max-new-tokens 448 --seeds 0,1,2,3
