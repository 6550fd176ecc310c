"""E3 with a hard target: can a curriculum from easy to hard data matter when the student is
evaluated on hard questions only? (docs/RESULTS.md, "E3: does the dynamic curriculum earn its claim?")

Builds the family's lab pool (`dmc lab build`: 11 datasets x 192 rows, seed 0), draws 96 eval
questions from the family's *hard* distribution (none of them in the pool), and trains the student
on each strategy at the lab's E3 budget (240 steps x 16 rows, lr 3e-3, constant), printing the final
accuracy per strategy and seed. The eval budget is 192 new tokens, since hard traces are longer.

    python experiments/e3/hard_target.py --family arith --student lab-small --seeds 0
    python experiments/e3/hard_target.py --family listops --student lab-small --seeds 0
    python experiments/e3/hard_target.py --family arith --student lab-base --seeds 0
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch

from dmc.curriculum import CurriculumSettings
from dmc.data import load_eval_set, load_pool
from dmc.lab import build_lab
from dmc.lab.tasks import get_family
from dmc.students import load_student
from dmc.training import TrainConfig, distill

STRATEGIES = ("schedule:easy-stepwise", "schedule:stepwise", "schedule:hard-stepwise",
              "schedule:easy-stepwise,hard-stepwise@0.5", "schedule:stepwise,hard-stepwise@0.5", "uniform")


def hard_eval(family: str, exclude: set[str], n: int) -> list[dict]:
    """`n` distinct questions of the family's hard distribution, none of them in `exclude`."""
    fam = get_family(family)
    rng = random.Random(f"dmc-e3-hard-eval/{family}")
    rows: list[dict] = []
    seen = set(exclude)
    for _ in range(n * 100):
        if len(rows) == n:
            break
        p = fam.sample(rng, fam.distributions["hard"])
        if p.question not in seen:
            seen.add(p.question)
            rows.append({"id": f"{family}-hard-{len(rows)}", "question": p.question, "gold": p.gold})
    if len(rows) < n:
        raise SystemExit(f"{family}: only {len(rows)} distinct hard questions outside the pool")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="arith")
    ap.add_argument("--student", default="lab-small")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds (default: 0)")
    ap.add_argument("--strategies", default=";".join(STRATEGIES), help="';'-separated strategies")
    ap.add_argument("--out", default="runs/e3-hard", help="run directory (default: runs/e3-hard)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    paths = build_lab(out / "data", family=args.family, n=192, n_eval=96, seed=0)[args.family]
    pool = load_pool(list(paths.pool.values()))
    ev = out / f"{args.family}-hard-eval.jsonl"
    ev.write_text("".join(json.dumps(r) + "\n" for r in
                          hard_eval(args.family, {s.question for d in pool for s in d.samples}, 96)))
    items = load_eval_set(ev)
    settings = CurriculumSettings(probe_size=16, target_size=24)  # the lab's E3 probe and target sizes
    for seed in (int(x) for x in args.seeds.split(",")):
        for strategy in args.strategies.split(";"):
            name = strategy.replace(":", "_").replace(",", "+").replace("@", "at")
            cfg = TrainConfig(output_dir=str(out / f"{args.student}-{args.family}-{seed}-{name}"), steps=240,
                              batch_size=16, learning_rate=3e-3, lr_scheduler="constant", warmup_steps=0,
                              max_length=384, eval_max_new_tokens=192, eval_batch_size=32, bf16=False,
                              save_model=False, seed=seed)
            res = distill(pool, load_student(args.student, dtype="float32"), items, strategy=strategy, config=cfg,
                          settings=settings, cache_dir=out / "cache")
            print(f"{args.student} {args.family} seed {seed} {strategy}: "
                  f"{100 * res.metrics['final_eval']['accuracy']:.1f}%", flush=True)


if __name__ == "__main__":
    main()
