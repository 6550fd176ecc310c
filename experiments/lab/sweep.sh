#!/usr/bin/env bash
# Offline sweep of the DMC settings (experiments/grid.json) on every lab run of experiments/lab/run.sh
# (cached statistics + E1 pilots; no forward pass), then the joint ranking with the chain-sum testbed.
# Usage: experiments/lab/sweep.sh [RUN_DIR] [CHAINSUM_SWEEP_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN="${1:-$ROOT/runs/lab}"; CS="${2:-$ROOT/runs/chainsum/sweep-joint}"
PY="${PY:-$ROOT/.venv/bin/python}"
FAMILIES="${FAMILIES:-listops arith}"; STUDENTS="${STUDENTS:-lab-small lab-base}"
beds=()
for fam in $FAMILIES; do
  for st in $STUDENTS; do
    name="$fam-$st"
    [ -d "$RUN/$name/pilots" ] || continue
    [ -f "$RUN/sweep/$name/sweep.csv" ] || "$PY" "$ROOT/experiments/chainsum/sweep.py" \
      --pool "$RUN/data/$fam/pool" --eval "$RUN/data/$fam/eval.jsonl" --cache "$ROOT/.dmc-cache" \
      --pilots "$RUN/$name/pilots" --student "$st" --max-samples 192 --attempts-max-new-tokens 96 \
      --n-boot 200 --grid "$(cat "$ROOT/experiments/grid.json")" --out "$RUN/sweep/$name" > "$RUN/sweep/$name.log" 2>&1
    beds+=("$name=$RUN/sweep/$name")
  done
done
[ -f "$CS/sweep.csv" ] && beds+=("chainsum=$CS")
"$PY" "$ROOT/experiments/joint.py" "${beds[@]}" --csv "$RUN/sweep/joint.csv"
