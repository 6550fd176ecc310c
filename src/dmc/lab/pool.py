"""The standard candidate pool: each candidate dataset is a teacher style × a question distribution."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dmc.lab.tasks import get_family
from dmc.lab.teachers import get_teacher


@dataclass(frozen=True)
class DatasetSpec:
    """How one candidate dataset is made: `teacher` (with `params`) answering questions drawn
    from the family's `distribution`. Datasets with the same distribution share their questions."""

    name: str
    family: str
    teacher: str
    distribution: str = "standard"
    params: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        fam = get_family(self.family)
        get_teacher(self.teacher)
        if self.distribution not in fam.distributions:
            raise KeyError(f"dataset {self.name!r}: unknown distribution {self.distribution!r} for "
                           f"family {self.family!r}; known: {sorted(fam.distributions)}")


# name, teacher, distribution, teacher params (the same recipe for every family)
_STANDARD = [
    ("stepwise", "stepwise", "standard", {}),
    ("quoting", "quoting", "standard", {}),
    ("terse", "terse", "standard", {}),
    ("verbose", "verbose", "standard", {}),
    ("redundant", "redundant", "standard", {}),
    ("answer-only", "answer-only", "standard", {}),
    ("noisy30", "noisy", "standard", {"error_rate": 0.3}),
    ("noisy70", "noisy", "standard", {"error_rate": 0.7}),
    ("mixed", "mixed", "standard", {}),
    ("easy-stepwise", "stepwise", "easy", {}),
    ("hard-stepwise", "stepwise", "hard", {}),
]

EVAL_DISTRIBUTION = "standard"


def standard_pool(family: str) -> list[DatasetSpec]:
    """The lab's standard pool of candidate datasets for `family` (eleven datasets)."""
    get_family(family)
    return [DatasetSpec(n, family, t, d, dict(p)) for n, t, d, p in _STANDARD]
