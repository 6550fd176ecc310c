#!/usr/bin/env bash
# Chain-sum testbed, end to end: a checked-in config and this one command (docs/RESULTS.md,
# "Chain-sum testbed"; experiments/README.md lists every experiment).
#   1. the testbed: `dmc lab build --task chainsum --n 128 --n-eval N_EVAL --seed SEED` into the
#      directory the config's `pool` and `eval` name (LAB/chainsum/pool, LAB/chainsum/eval.jsonl);
#   2. `dmc validate --config CONFIG`: every metric on the untouched student (statistics cached in
#      the config's `cache`), then the E1 pilots; writes e1.json, scores/ and report/ under `out`;
#   3. every DMC setting of experiments/grid.json against the E1 accuracies, offline from the cached
#      statistics (sweep.py), into RUN/sweep-joint (RUN: the parent of `out`), and RUN/tables.md.
# Usage: experiments/chainsum/run.sh [SEED [CONFIG [N_EVAL]]]
#   SEED    generator seed (default 0)
#   CONFIG  default experiments/chainsum/validate.yaml for seed 0, experiments/chainsum/validate-gen<SEED>.yaml
#           otherwise (validate-gen1.yaml: the second draw)
#   N_EVAL  eval questions (default 96; 64 for validate-16steps.yaml)
# A rerun resumes: statistics and finished pilots are cached. Nothing outside the repository is read.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# a path given on the command line, as seen from the repository root (relative when inside it)
from_root() { local p; case "$1" in /*) p="$1" ;; *) p="$PWD/$1" ;; esac; echo "${p#"$ROOT"/}"; }

SEED="${1:-0}"
if [ "$SEED" = 0 ]; then CONFIG=experiments/chainsum/validate.yaml; else CONFIG="experiments/chainsum/validate-gen$SEED.yaml"; fi
[ -z "${2:-}" ] || CONFIG="$(from_root "$2")"
N_EVAL="${3:-96}"
N=128  # rows per candidate dataset (DESIGN.md §8); every pilot trains on all of them
cd "$ROOT"
DMC=.venv/bin/dmc; [ -x "$DMC" ] || DMC=dmc
PY=.venv/bin/python; [ -x "$PY" ] || PY=python3
[ -f "$CONFIG" ] || { echo "config not found: $CONFIG" >&2; exit 2; }

# where the config puts the testbed (LAB) and the run (RUN)
LOC="$("$PY" - "$CONFIG" <<'EOF'
import sys
from pathlib import Path
from dmc.settings import load_config

c = load_config(sys.argv[1])
ev, pool, out = Path(c.get("eval") or "."), [Path(p) for p in c.get("pool") or []], c.get("out")
lab = ev.parent.parent
if ev.name != "eval.jsonl" or ev.parent.name != "chainsum" or pool != [lab / "chainsum" / "pool"] or not out:
    sys.exit(f"{sys.argv[1]}: expected pool: [LAB/chainsum/pool], eval: LAB/chainsum/eval.jsonl and an out "
             "directory (the layout of `dmc lab build --task chainsum --out LAB`)")
print(lab)
print(Path(out).parent)
EOF
)"
{ read -r LAB; read -r RUN; } <<<"$LOC"
mkdir -p "$RUN"

# 1. the testbed (deterministic for a seed; rebuilding rewrites the same rows)
"$DMC" lab build --task chainsum --out "$LAB" --n "$N" --n-eval "$N_EVAL" --seed "$SEED"

# 2. scoring and E1 pilots in one run
"$DMC" validate --config "$CONFIG"

# 3. offline correlations of every metric and DMC setting/version with the E1 accuracies
"$PY" experiments/chainsum/sweep.py --config "$CONFIG" --n-boot 1000 --out "$RUN/sweep-joint"
"$PY" experiments/chainsum/tables.py "$RUN/sweep-joint" > "$RUN/tables.md"
echo "done: $RUN/validate (e1.json, report/), $RUN/sweep-joint (sweep.csv, baselines.csv, components.csv), $RUN/tables.md"
