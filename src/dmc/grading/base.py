"""The verifier interface: decide whether an extracted answer equals a gold answer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from dmc.grading.result import Grade


class Verifier(ABC):
    """Compares one answer with one gold answer; `verify_many` may batch the work."""

    name: ClassVar[str]

    @abstractmethod
    def verify(self, answer: str, gold: str) -> Grade:
        """`correct`, `wrong`, or `ungradable` (with a reason) for `answer` against `gold`."""

    def verify_many(self, pairs: Sequence[tuple[str, str]]) -> list[Grade]:
        """Grades of (answer, gold) pairs, in order."""
        return [self.verify(answer, gold) for answer, gold in pairs]


def precheck(answer: str, gold: str) -> Grade | None:
    """The verdict every verifier shares for degenerate inputs, or None when there is none.

    An empty gold cannot be graded against; an empty answer is simply wrong.
    """
    if not isinstance(answer, str) or not isinstance(gold, str):
        raise TypeError(
            f"verify(answer, gold) expects two str, got {type(answer).__name__} and {type(gold).__name__}"
        )
    if not gold.strip():
        return Grade.ungradable("empty gold", answer)
    if not answer.strip():
        return Grade.wrong(answer, "empty answer")
    return None
