"""Rebuild the shipped lab students: `python -m dmc.lab.rebuild_students [NAME ...]`.

Runs `dmc lab pretrain` with each student's recorded recipe (seed 0, default steps) into the
package's students folder. Single-threaded: the result is reproducible on a given machine.
"""

from __future__ import annotations

import sys

from dmc.lab.pretrain import pretrain
from dmc.lab.registry import LAB_ARCHS, students_dir


def main(names: list[str]) -> None:
    for name in names or list(LAB_ARCHS):
        out = students_dir() / name
        m = pretrain(name, out, seed=0, threads=1,
                     command=f"python -m dmc.lab.rebuild_students {name}")
        acc = ", ".join(f"{f} {v['accuracy']:.3f}" for f, v in m["initial_accuracy"].items())
        print(f"{name}: {m['n_parameters']:,} parameters, final loss {m['final_loss']:.4f}, "
              f"initial accuracy {acc} -> {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
