"""The outcome of grading one answer against one gold answer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

GradeStatus = Literal["correct", "wrong", "ungradable"]
STATUSES: tuple[str, ...] = ("correct", "wrong", "ungradable")


@dataclass(frozen=True)
class Grade:
    """A verdict: `correct`, `wrong`, or `ungradable` (the grader could not decide).

    `reason` says why a grade is `ungradable` (required then) and may explain a `wrong` one;
    `answer` is the final answer the verdict is about (None when none was extracted).
    """

    status: GradeStatus
    reason: str | None = None
    answer: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"Grade.status must be one of {STATUSES}, got {self.status!r}")
        # An ungradable verdict without a reason is indistinguishable from a silent failure.
        if self.status == "ungradable" and not self.reason:
            raise ValueError("Grade.status 'ungradable' requires a non-empty reason")

    @property
    def score(self) -> float:
        """1.0 when correct, 0.0 when wrong, NaN when ungradable (never a silent 0 or 1)."""
        if self.status == "correct":
            return 1.0
        if self.status == "wrong":
            return 0.0
        return math.nan

    @property
    def is_gradable(self) -> bool:
        """True when the verdict is `correct` or `wrong`."""
        return self.status != "ungradable"

    @classmethod
    def correct(cls, answer: str | None = None, reason: str | None = None) -> Grade:
        return cls("correct", reason, answer)

    @classmethod
    def wrong(cls, answer: str | None = None, reason: str | None = None) -> Grade:
        return cls("wrong", reason, answer)

    @classmethod
    def ungradable(cls, reason: str, answer: str | None = None) -> Grade:
        return cls("ungradable", reason, answer)
