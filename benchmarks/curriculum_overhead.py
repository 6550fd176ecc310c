"""Wall-time overhead of the dynamic DMC curriculum over the static DMC choice, side by side in one run.

Trains the same student on the same lab family (eleven candidate datasets) twice in this process,
`static-dmc` then `dynamic-dmc`, with the same TrainConfig and CurriculumSettings (defaults unless
overridden), and prints

    overhead = training wall time of dynamic-dmc / training wall time of static-dmc - 1

(target <= 0.05). Both start from the same initial scores (the first run fills the statistics
cache the second reads), so the difference is the re-scoring during training; each re-score's time
is split into token statistics, attempts or answer likelihoods and the rest (metrics, bootstrap). `--repeats 2` runs the
pair twice, alternating, and reports each pair.

    python benchmarks/curriculum_overhead.py                          # lab-small, arith, 240 steps
    python benchmarks/curriculum_overhead.py --student lab-base --family listops
    python benchmarks/curriculum_overhead.py --set rescore_every=120 --set probe_size=32 --batch-size 16
    python benchmarks/curriculum_overhead.py --set metric=dmc_v2 --capability likelihood   # re-scores generate nothing
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
    ap.add_argument("--steps", type=int, default=240, help="optimizer steps (default: 240)")
    ap.add_argument("--batch-size", type=int, default=None, help="rows per step (default: TrainConfig's)")
    ap.add_argument("--n", type=int, default=256, help="samples per candidate dataset (default: 256)")
    ap.add_argument("--n-eval", type=int, default=128, help="eval questions (default: 128)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    ap.add_argument("--repeats", type=int, default=1, help="static/dynamic pairs to run, alternating (default: 1)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a CurriculumSettings field (e.g. --set probe_size=16); default: the defaults")
    ap.add_argument("--capability", default="attempts", choices=("attempts", "likelihood"),
                    help="MetricSettings.capability of every score and re-score (default: attempts)")
    ap.add_argument("--out", default=None, help="keep the runs here (default: a temporary directory)")
    args = ap.parse_args()

    import torch
    import yaml

    from dmc.curriculum import CurriculumSettings
    from dmc.data import load_eval_set, load_pool
    from dmc.lab import build_lab
    from dmc.metrics import MetricSettings
    from dmc.scoring import ScoringSettings
    from dmc.settings import from_dict
    from dmc.students import load_student
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
    batch = {"batch_size": args.batch_size} if args.batch_size else {}
    scoring = ScoringSettings(metric=MetricSettings(capability=args.capability))

    def run(strategy: str, i: int) -> dict:
        student = load_student(args.student, dtype="float32")
        cfg = TrainConfig(output_dir=str(root / f"{strategy}-{i}"), steps=args.steps, save_model=False, **batch)
        res = distill(pool, student, items, strategy=strategy, config=cfg, settings=settings, scoring=scoring,
                      cache_dir=root / "cache")
        return {"train_seconds": res.metrics["train_seconds"], "dir": root / f"{strategy}-{i}"}

    interval = settings.rescore_interval(args.steps)
    print(f"student {args.student}, family {args.family}: {len(pool)} datasets x {args.n} samples, {args.steps} steps "
          f"(re-score every {interval}), batch {args.batch_size or TrainConfig().batch_size}, {args.threads} "
          f"thread(s); capability {args.capability}; curriculum {settings.to_dict()}")
    run("static-dmc", -1)  # warm-up: loads the student and fills the statistics cache for both strategies
    pairs = []
    for i in range(args.repeats):
        static = run("static-dmc", i)
        dynamic = run("dynamic-dmc", i)
        events = [e for e in _rescores(dynamic["dir"]) if e["step"] > 0]
        rescoring = sum(e["seconds"] for e in events)
        pair = {"static_train_seconds": round(static["train_seconds"], 2),
                "dynamic_train_seconds": round(dynamic["train_seconds"], 2),
                "overhead": round(dynamic["train_seconds"] / static["train_seconds"] - 1.0, 4),
                "rescoring_seconds": round(rescoring, 2),
                "rescoring_share_of_static": round(rescoring / static["train_seconds"], 4),
                "rescores": [{"step": e["step"], "seconds": e["seconds"], **e.get("timing", {})} for e in events]}
        pairs.append(pair)
        print(json.dumps(pair, indent=2))
    for p in pairs:
        verdict = "within" if p["overhead"] <= 0.05 else "ABOVE"
        print(f"dynamic-dmc overhead: {100 * p['overhead']:.1f}% of static-dmc's training time ({verdict} the 5% "
              f"target): {p['dynamic_train_seconds']:.1f} s vs {p['static_train_seconds']:.1f} s; its "
              f"{len(p['rescores'])} re-scores took {p['rescoring_seconds']:.2f} s "
              f"({100 * p['rescoring_share_of_static']:.1f}%)")


def _rescores(run_dir: Path) -> list[dict]:
    events = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [e for e in events if e["event"] == "rescore"]


if __name__ == "__main__":
    main()
