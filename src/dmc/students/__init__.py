"""Students: load them, fingerprint them, template and mask their inputs, generate with them.

See docs/ARCHITECTURE.md (Students) for the contract of `Student` and `Encoded`.
"""

from dmc.students.fingerprint import student_fingerprint
from dmc.students.generation import Generation, generate
from dmc.students.loading import builtin_students, load_student
from dmc.students.masking import Encoded, TemplateMismatchError
from dmc.students.student import Student
from dmc.students.tiny import tiny_student, tiny_tokenizer

__all__ = ["Encoded", "Generation", "Student", "TemplateMismatchError", "builtin_students", "generate", "load_student",
           "student_fingerprint", "tiny_student", "tiny_tokenizer"]
