"""What capability costs: generated attempts against gold-answer likelihoods, side by side in one run.

On the same student and the same questions, with no statistics cache:

  attempts     capability="attempts": k greedy attempts per question, each up to --max-new-tokens,
               graded (dmc.stats.attempts);
  likelihood   capability="likelihood": one teacher-forced pass per question over its answer probe
               "The answer is <gold>." (dmc.stats.answers).

Prints the wall-clock seconds of each (best of --repeat) and their ratio. The questions are the eval
set of a lab family (`dmc lab build`), so nothing is downloaded.

Usage:
  python benchmarks/capability_cost.py                                   # lab-small, arith, 96 questions
  python benchmarks/capability_cost.py --student smollm2-135m --family chainsum --questions 48 --max-new-tokens 128
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dmc.data import load_eval_set  # noqa: E402
from dmc.lab import build_lab  # noqa: E402
from dmc.metrics import MetricSettings  # noqa: E402
from dmc.scoring import ScoringSettings, compute_tables  # noqa: E402
from dmc.stats import AttemptSettings  # noqa: E402
from dmc.students import load_student  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", default="lab-small", help="a name/path for dmc.students.load_student")
    ap.add_argument("--family", default="arith", help="lab task family whose eval questions are used")
    ap.add_argument("--questions", type=int, default=96, help="questions (the family's eval set, first N)")
    ap.add_argument("--max-new-tokens", type=int, default=96, help="attempt budget (AttemptSettings.max_new_tokens)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    st = load_student(args.student, dtype="float32")
    root = Path(tempfile.mkdtemp(prefix="dmc-capability-"))
    paths = build_lab(root / "lab", family=args.family, n=8, n_eval=args.questions, seed=0)[args.family]
    questions = load_eval_set(paths.eval)[:args.questions]
    attempts = AttemptSettings(max_new_tokens=args.max_new_tokens)
    runs = {
        "attempts": (ScoringSettings(metrics=("dmc_v2",), attempts=attempts), {"attempts"}),
        "likelihood": (ScoringSettings(metrics=("dmc_v2",), attempts=attempts,
                                       metric=MetricSettings(capability="likelihood")), {"answers"}),
    }
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, (settings, needs) in runs.items():
            t0 = time.perf_counter()
            tables = compute_tables(st, [], settings, questions=questions, needs=needs, cache=None)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
            if name == "attempts":
                generated = int(tables.attempts["n_tokens"].sum())
    print(f"student {args.student} ({st.fingerprint}), {len(questions)} {args.family} questions, "
          f"{args.threads} thread(s), best of {args.repeat}")
    print(f"attempts:   {best['attempts']:.2f} s ({generated} tokens generated, budget {args.max_new_tokens})")
    print(f"likelihood: {best['likelihood']:.2f} s")
    print(f"likelihood / attempts = {best['likelihood'] / best['attempts']:.3f} "
          f"({best['attempts'] / best['likelihood']:.1f}x faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
