"""Math answer equivalence with math-verify, isolated in a worker process with a hard timeout."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from functools import cache

from dmc.grading.base import Verifier, precheck
from dmc.grading.result import Grade
from dmc.grading.worker import MathWorker, WorkerResult, default_worker

_VERIFY_FN = "dmc.grading._worker:verify_pair"


@cache
def math_verify_installed() -> bool:
    """True when the `math_verify` package can be imported."""
    return importlib.util.find_spec("math_verify") is not None


class MathVerifier(Verifier):
    """Symbolic/numeric equivalence by math-verify (``\\frac{1}{2}`` == ``0.5``,
    ``x^2+2x+1`` == ``(x+1)^2``, sets, intervals, equations ``x=3`` == ``3``).

    Each (answer, gold) pair must finish within `timeout` seconds or it is `ungradable` with
    reason "timeout" (the worker is killed and restarted). A gold math-verify cannot parse, or a
    math-verify error, is `ungradable` with the error text; an answer it cannot parse is `wrong`.
    Answers are read as LaTeX math (wrapped in ``$...$``) unless they carry their own delimiters.
    """

    name = "math"
    # "module:function(gold, answer, inner_timeout) -> {"status", "reason"}" run in the worker;
    # replaceable so that tests can inject a function that hangs.
    verify_fn: str = _VERIFY_FN

    def __init__(self, timeout: float = 10.0, worker: MathWorker | None = None) -> None:
        if timeout <= 0:
            raise ValueError(f"MathVerifier timeout must be positive, got {timeout}")
        self.timeout = timeout
        self._worker = worker

    @property
    def worker(self) -> MathWorker:
        return self._worker if self._worker is not None else default_worker()

    def verify(self, answer: str, gold: str) -> Grade:
        return self.verify_many([(answer, gold)])[0]

    def verify_many(self, pairs: Sequence[tuple[str, str]]) -> list[Grade]:
        grades: list[Grade | None] = [precheck(a, g) for a, g in pairs]
        todo = sorted({(g.strip(), a.strip()) for (a, g), pre in zip(pairs, grades) if pre is None})
        if todo:
            # math-verify's own alarms (whole seconds) fire before the hard deadline when they can.
            inner = max(1, math.floor(self.timeout / 3))
            results = self.worker.call_many(self.verify_fn, [[g, a, inner] for g, a in todo], self.timeout)
            by_pair = dict(zip(todo, results))
            for k, ((a, g), pre) in enumerate(zip(pairs, grades)):
                if pre is None:
                    grades[k] = _to_grade(by_pair[(g.strip(), a.strip())], a)
        return [g for g in grades if g is not None]


def _to_grade(res: WorkerResult, answer: str) -> Grade:
    if res.status == "timeout":
        return Grade.ungradable("timeout", answer)
    if res.status == "crash":
        return Grade.ungradable(res.error or "math worker crashed", answer)
    if res.status == "error":
        return Grade.ungradable(f"math-verify error: {res.error}", answer)
    value = res.value
    if not isinstance(value, dict) or value.get("status") not in ("correct", "wrong", "ungradable"):
        return Grade.ungradable(f"math worker returned an invalid result: {value!r:.200}", answer)
    return Grade(value["status"], value.get("reason"), answer)
