"""The student's greedy attempts (capability c_i) on a seeded subset of the pool's questions and on
the target questions, written to the statistics cache that `dmc score` and sweep.py read.

`dmc score` attempts every scored question at 16 sequences per batch; on 2 shared CPU cores that
is the costliest stage (an untrained student rambles to the token budget). This does the same
computation (dmc.stats.compute_attempts, same AttemptSettings apart from the throughput-only
batch size, so the cache entries are identical) on fewer pool questions and in larger batches.

Usage: python experiments/chainsum/capability.py POOL_DIR EVAL_FILE CACHE_DIR
          [--student smollm2-135m] [--samples 32] [--max-new-tokens 128] [--batch-size 48]
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pool"), ap.add_argument("eval"), ap.add_argument("cache")
    ap.add_argument("--student", default="smollm2-135m")
    ap.add_argument("--samples", type=int, default=32, help="pool questions per dataset (seeded subsample)")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    from dmc.data import load_eval_set, load_pool
    from dmc.scoring import subsample
    from dmc.stats import AttemptSettings, StatsCache, compute_attempts
    from dmc.students import load_student

    pool = [subsample(d, a.samples, a.seed) for d in load_pool(a.pool)]
    evals = load_eval_set(a.eval)
    questions = list(evals) + [s for d in pool for s in d]  # target questions first: C_T matters most
    settings = AttemptSettings(max_new_tokens=a.max_new_tokens, seed=a.seed, batch_size=a.batch_size)
    df = compute_attempts(load_student(a.student), questions, settings, cache=StatsCache(Path(a.cache)),
                          progress=False)
    run = df.attrs.get("run", {})
    print(f"attempts: {df['question_hash'].nunique()} questions, {run.get('computed', '?')} computed; "
          f"pass rate {(df['grade'] == 'correct').mean():.3f}")


if __name__ == "__main__":
    main()
