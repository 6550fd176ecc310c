"""DMC: Data-Model Compatibility for student-centered reasoning distillation.

The top-level names are imported lazily so that `import dmc` (and `dmc --help`) stays fast.
"""

from __future__ import annotations

import functools
import importlib
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_dataset": "dmc.data", "load_pool": "dmc.data", "load_eval_set": "dmc.data",
    "Sample": "dmc.data", "CandidateDataset": "dmc.data", "EvalItem": "dmc.data",
    "load_student": "dmc.students", "Student": "dmc.students",
    "score": "dmc.scoring", "load_scores": "dmc.scoring",
    "select": "dmc.selection", "write_selection": "dmc.selection",
    "grade": "dmc.grading",
    "compute_token_stats": "dmc.stats", "compute_attempts": "dmc.stats",
    "evaluate": "dmc.evaluation",
    "train": "dmc.training", "TrainConfig": "dmc.training", "DMCCurriculumCallback": "dmc.training",
}

__all__ = ["__version__", "environment", *_EXPORTS]

# the packages whose numerics or defaults a result depends on (training, scoring, generation)
RESULT_PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "tokenizers", "datasets", "numpy", "vllm")


def environment() -> dict[str, str | None]:
    """Python, the platform and the installed versions of `RESULT_PACKAGES` (None when absent): what
    a run's manifest records, since the dependencies are ranges and a newer release may move a result."""
    return dict(_environment())


@functools.cache  # fixed for the process; every score (each curriculum re-score too) records it
def _environment() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in RESULT_PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dmc' has no attribute {name!r}")
