"""Answer extraction and verification (DESIGN.md §5 "Grading").

A grade is `correct`, `wrong` or `ungradable`; its `score` is 1.0, 0.0 or NaN. The split:

- `wrong` means the text failed: its answer differs from the gold, it gives no extractable answer
  ("no answer extracted"), or it gives a non-number where the gold is a number.
- `ungradable` means the grader could not decide, always with a reason: no gold ("no gold"), a
  gold the verifier cannot read (not a number for `numeric`, not parsable by math-verify for
  `math`), a math-verify timeout ("timeout") or error. It is never turned into 0 or 1.

Verifiers (`get_verifier(name, **settings)`): "exact", "normalized", "numeric" (relative and
absolute tolerance), "math" (math-verify in a persistent worker process with a hard per-item
timeout) and "auto" (numeric for numeric golds, normalized text for word golds, math otherwise;
normalized text when math-verify is not installed).
"""

from dmc.grading.api import grade, grade_many
from dmc.grading.base import Verifier
from dmc.grading.extract import Extraction, clean_answer, extract_answer
from dmc.grading.mathverify import MathVerifier
from dmc.grading.normalize import normalize_text
from dmc.grading.numeric import ParsedNumber, parse_number
from dmc.grading.result import Grade
from dmc.grading.verifiers import (
    VERIFIERS,
    AutoVerifier,
    ExactVerifier,
    NormalizedVerifier,
    NumericVerifier,
    get_verifier,
)
from dmc.grading.worker import MathWorker, WorkerResult, default_worker

__all__ = [
    "VERIFIERS",
    "AutoVerifier",
    "ExactVerifier",
    "Extraction",
    "Grade",
    "MathVerifier",
    "MathWorker",
    "NormalizedVerifier",
    "NumericVerifier",
    "ParsedNumber",
    "Verifier",
    "WorkerResult",
    "clean_answer",
    "default_worker",
    "extract_answer",
    "get_verifier",
    "grade",
    "grade_many",
    "normalize_text",
    "parse_number",
]
