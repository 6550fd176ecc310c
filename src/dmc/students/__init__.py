"""Students: load them, fingerprint them, template and mask their inputs, generate with them.

See docs/ARCHITECTURE.md (Students) for the contract of `Student` and `Encoded`. Names are
imported lazily (PEP 562), so `import dmc.students` does not pull in transformers until a loader,
the tiny builder or generation is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Encoded": "dmc.students.masking",
    "TemplateMismatchError": "dmc.students.masking",
    "Student": "dmc.students.student",
    "student_fingerprint": "dmc.students.fingerprint",
    "Generation": "dmc.students.generation",
    "generate": "dmc.students.generation",
    "builtin_students": "dmc.students.loading",
    "load_student": "dmc.students.loading",
    "tiny_student": "dmc.students.tiny",
    "tiny_tokenizer": "dmc.students.tiny",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from dmc.students.fingerprint import student_fingerprint
    from dmc.students.generation import Generation, generate
    from dmc.students.loading import builtin_students, load_student
    from dmc.students.masking import Encoded, TemplateMismatchError
    from dmc.students.student import Student
    from dmc.students.tiny import tiny_student, tiny_tokenizer


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dmc.students' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
