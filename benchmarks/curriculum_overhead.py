"""Wall-time overhead of the dynamic DMC curriculum's re-scoring, as a fraction of training time.

Runs `dmc.training.distill` with strategy `dynamic-dmc` at the default TrainConfig and
CurriculumSettings on one lab family (ten candidate datasets) and prints

    overhead = mean seconds of a re-score during training
               / seconds of the `rescore_every` training steps between two re-scores

i.e. the steady-state slowdown of training with the dynamic curriculum over training with a fixed
mixture (target <= 0.15). The scoring at step 0, which picks the first mixture (static DMC
selection pays the same), is reported apart, with the whole run's overhead counting it. Each
re-score's time is split into token statistics, attempts and metrics.

    python benchmarks/curriculum_overhead.py                      # lab-small, arith, 3 intervals
    python benchmarks/curriculum_overhead.py --student lab-base --family listops
    python benchmarks/curriculum_overhead.py --set rescore_every=50 --set probe_size=32
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", default="lab-small", help="student spec for load_student (default: lab-small)")
    ap.add_argument("--family", default="arith", help="lab task family (default: arith)")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps (default: 3 x rescore_every)")
    ap.add_argument("--n", type=int, default=256, help="samples per candidate dataset (default: 256)")
    ap.add_argument("--n-eval", type=int, default=128, help="eval questions (default: 128)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a CurriculumSettings field (e.g. --set probe_size=16); default: the defaults")
    ap.add_argument("--out", default=None, help="keep the runs here (default: a temporary directory)")
    args = ap.parse_args()

    import torch

    from dmc.data import load_eval_set, load_pool
    from dmc.lab import build_lab
    from dmc.students import load_student
    import yaml

    from dmc.curriculum import CurriculumSettings
    from dmc.settings import from_dict
    from dmc.training import TrainConfig, distill

    torch.set_num_threads(args.threads)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="dmc-overhead-"))
    paths = build_lab(root / "lab", family=args.family, n=args.n, n_eval=args.n_eval, seed=0)[args.family]
    pool = load_pool(list(paths.pool.values()))
    items = load_eval_set(paths.eval)
    overrides = {}
    for kv in args.set:
        key, _, value = kv.partition("=")
        overrides[key] = yaml.safe_load(value)
    settings = from_dict(CurriculumSettings, overrides)
    args.steps = args.steps or 3 * settings.rescore_every

    def run(strategy: str) -> dict:
        student = load_student(args.student, dtype="float32")
        cfg = TrainConfig(output_dir=str(root / strategy), steps=args.steps, save_model=False)
        t0 = time.perf_counter()
        res = distill(pool, student, items, strategy=strategy, config=cfg, settings=settings,
                      cache_dir=root / "cache")
        return {"wall": time.perf_counter() - t0, "metrics": res.metrics}

    print(f"student {args.student}, family {args.family}: {len(pool)} datasets x {args.n} samples, "
          f"{args.steps} steps, batch {TrainConfig().batch_size}, {args.threads} thread(s); curriculum {settings.to_dict()}")
    dyn = run("dynamic-dmc")
    train_s = dyn["metrics"]["train_seconds"]
    events = _rescores(root / "dynamic-dmc")
    initial = sum(e["seconds"] for e in events if e["step"] == 0)
    during = [e["seconds"] for e in events if e["step"] > 0]
    if not during:
        raise SystemExit(f"no re-score after step 0 in {args.steps} steps: use --steps > rescore_every ({settings.rescore_every})")
    base = train_s - initial - sum(during)  # the same training without any scoring
    per_interval = base / args.steps * settings.rescore_every
    overhead = (sum(during) / len(during)) / per_interval
    out = {"student": args.student, "family": args.family, "steps": args.steps, "rescore_every": settings.rescore_every,
           "train_seconds": round(train_s, 2), "training_without_scoring_seconds": round(base, 2),
           "initial_scoring_seconds": round(initial, 2), "rescoring_seconds": round(sum(during), 2),
           "rescores": [{"step": e["step"], "seconds": e["seconds"], **e.get("timing", {})} for e in events],
           "overhead": round(overhead, 4),
           "run_overhead_with_initial_scoring": round((initial + sum(during)) / base, 4)}
    print(json.dumps(out, indent=2))
    verdict = "within" if overhead <= 0.15 else "ABOVE"
    print(f"re-scoring overhead: {100 * overhead:.1f}% of training time ({verdict} the 15% target): a re-score takes "
          f"{sum(during) / len(during):.2f} s per {settings.rescore_every} training steps of {per_interval:.2f} s; "
          f"this whole run, counting the initial scoring (which static DMC selection also pays): "
          f"{100 * out['run_overhead_with_initial_scoring']:.1f}%")


def _rescores(run_dir: Path) -> list[dict]:
    events = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [e for e in events if e["event"] == "rescore"]


if __name__ == "__main__":
    main()
