"""The Ray backend against the local one, side by side in one run, on the same student and pool:

  local       dmc.stats in this process, one torch thread;
  ray x1      the same batches on one Ray actor with one CPU (overhead: goal <= 1.10x local);
  ray x2      two actors with one CPU each (scaling: ideal 0.5x local on >= 2 free cores).

Each run starts from an empty statistics cache and includes everything a user waits for
(the actors' start and student load, shipping batches and results, writing the shards); the
local Ray cluster is started before the clock. Wall-clock seconds, best of --repeat. The tables
are checked equal to the local ones (logprob within 1e-5, identical attempts).

Usage:
  python benchmarks/ray_backend.py                                   # lab-base, generated arith pool
  python benchmarks/ray_backend.py --student lab-small --samples 128 --attempts
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dmc.data import load_pool  # noqa: E402
from dmc.lab import build_lab  # noqa: E402
from dmc.scoring import ScoringSettings, compute_tables  # noqa: E402
from dmc.stats import AttemptSettings, BackendSettings, StatsCache  # noqa: E402
from dmc.students import load_student  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", default="lab-base", help="a name/path for dmc.students.load_student")
    ap.add_argument("--samples", type=int, default=96, help="samples per dataset of the generated pool")
    ap.add_argument("--datasets", type=int, default=2, help="datasets of the pool used")
    ap.add_argument("--attempts", action="store_true", help="also time the student's attempts (k=1, greedy)")
    ap.add_argument("--batch-tokens", type=int, default=2048, help="padded tokens per scoring batch")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)

    import ray

    torch.set_num_threads(1)
    st = load_student(args.student)
    with tempfile.TemporaryDirectory() as tmp:
        paths = list(build_lab(Path(tmp) / "lab", family="arith", n=args.samples, n_eval=1)["arith"].pool.values())
        samples = [s for d in load_pool(paths[:args.datasets]) for s in d]
        needs = {"tokens"} | ({"attempts"} if args.attempts else set())
        settings = ScoringSettings()
        settings = ScoringSettings(tokens=settings.tokens.__class__(batch_tokens=args.batch_tokens),
                                   attempts=AttemptSettings(max_new_tokens=48))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        runs = {"local": None, "ray x1": BackendSettings(backend="ray", num_workers=1, worker_cpus=1),
                "ray x2": BackendSettings(backend="ray", num_workers=2, worker_cpus=1)}
        best = {name: float("inf") for name in runs}
        tables = {}
        n_batches = 0
        for r in range(args.repeat):
            for name, backend in runs.items():
                t0 = time.perf_counter()
                tables[name] = compute_tables(st, samples, settings, needs=needs, backend=backend,
                                              cache=StatsCache(Path(tmp) / f"cache-{name}-{r}"))
                best[name] = min(best[name], time.perf_counter() - t0)
                n_batches = tables[name].run["tokens"]["forward_passes"]
        ray.shutdown()
    ok = True
    for name in ("ray x1", "ray x2"):
        a, b = tables["local"].tokens, tables[name].tokens
        ok &= max(float(np.abs(x - y).max()) for x, y in zip(a["logprob"], b["logprob"])) <= 1e-5
        if args.attempts:
            ok &= tables["local"].attempts["text"].tolist() == tables[name].attempts["text"].tolist()
    tokens = int(tables["local"].tokens["n_tokens"].sum())
    print(f"student {st.name}; {len(samples)} samples ({tokens:,} response tokens, {n_batches} batches)"
          f"{' + attempts' if args.attempts else ''}; 2 CPUs; wall seconds, best of {args.repeat}")
    print(f"{'backend':<10}{'seconds':>10}{'vs local':>10}")
    for name, sec in best.items():
        print(f"{name:<10}{sec:>10.2f}{sec / best['local']:>9.2f}x")
    print(f"overhead ray x1 {best['ray x1'] / best['local']:.2f}x (goal <= 1.10x); tables equal: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
