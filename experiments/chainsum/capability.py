"""The student's greedy attempts (capability c_i) on a seeded subset of the pool's questions and on
the target questions, written to the statistics cache that `dmc validate` and sweep.py read.

Optional: `dmc validate --config` computes every attempt it needs itself. On 2 shared CPU cores
the attempts are the costliest part of scoring (an untrained student rambles to the token
budget); this computes the same entries (dmc.stats.compute_attempts under the config's
ScoringSettings.attempts, apart from the throughput-only batch size, so the cache keys are
identical) for fewer pool questions and in larger batches, e.g. beside another job.

Usage: python experiments/chainsum/capability.py --config experiments/chainsum/validate.yaml
          [--samples 32] [--batch-size 48]
       python experiments/chainsum/capability.py POOL_DIR EVAL_FILE CACHE_DIR
          [--student smollm2-135m] [--samples 32] [--max-new-tokens 128] [--batch-size 48]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pool", nargs="?"), ap.add_argument("eval", nargs="?"), ap.add_argument("cache", nargs="?")
    ap.add_argument("--config", help="a `dmc validate --config` file: student, pool, eval, cache and the "
                    "attempt settings come from it")
    ap.add_argument("--student", default=None, help="default: the config's, else smollm2-135m")
    ap.add_argument("--samples", type=int, default=32, help="pool questions per dataset (seeded subsample)")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: the config's attempt budget, else 128")
    ap.add_argument("--batch-size", type=int, default=48)
    ap.add_argument("--seed", type=int, default=None, help="default: the config's seed, else 0")
    a = ap.parse_args(argv)

    from dmc.data import load_eval_set
    from dmc.scoring import ScoringSettings, load_inputs, subsample
    from dmc.stats import StatsCache, compute_attempts
    from dmc.students import load_student

    if a.config:
        from dmc.cli.validate import ValidateCommand
        from dmc.settings import from_dict, load_config

        cmd = from_dict(ValidateCommand, load_config(a.config))
        scoring, student = cmd.validate.scoring, cmd.student
        pool_paths, eval_path, cache = list(cmd.pool), cmd.eval, cmd.cache
    else:
        scoring, student = ScoringSettings(attempts=dataclasses.replace(ScoringSettings().attempts, max_new_tokens=128)), None
        pool_paths, eval_path, cache = [a.pool] if a.pool else [], a.eval, a.cache
    pool_paths = [a.pool] if a.pool else pool_paths
    eval_path, cache, student = a.eval or eval_path, a.cache or cache, a.student or student or "smollm2-135m"
    if not (pool_paths and eval_path and cache):
        raise SystemExit("give --config, or POOL_DIR EVAL_FILE CACHE_DIR")
    if a.seed is not None:
        scoring = scoring.with_seed(a.seed)
    attempts = dataclasses.replace(scoring.attempts, batch_size=a.batch_size,
                                   **({"max_new_tokens": a.max_new_tokens} if a.max_new_tokens else {}))

    pool = [subsample(d, a.samples, scoring.seed) for d in load_inputs(pool_paths)]
    evals = load_eval_set(eval_path)
    questions = list(evals) + [s for d in pool for s in d]  # target questions first: C_T matters most
    df = compute_attempts(load_student(student), questions, attempts, cache=StatsCache(Path(cache)), progress=False)
    run = df.attrs.get("run", {})
    print(f"attempts ({student}, {attempts}): {df['question_hash'].nunique()} questions, "
          f"{run.get('computed', '?')} computed; pass rate {(df['grade'] == 'correct').mean():.3f}")


if __name__ == "__main__":
    main()
