"""The lab: a miniature world (task families, programmatic teachers, tiny pretrained students)
that runs the whole DMC pipeline on 2 CPU cores. See docs/ARCHITECTURE.md."""

from dmc.lab.build import LAB_TASKS, LabPaths, build_lab, eval_rows
from dmc.lab.chainsum import chainsum_pool
from dmc.lab.pool import DatasetSpec, standard_pool
from dmc.lab.pretrain import pretrain
from dmc.lab.registry import LAB_ARCHS, lab_students, student_path, students_dir
from dmc.lab.tasks import ALL_FAMILIES, DEV_FAMILIES, HELD_OUT_FAMILIES, TASK_FAMILIES, extract_answer, get_family, verify
from dmc.lab.teachers import TEACHERS


__all__ = [
    "ALL_FAMILIES", "DEV_FAMILIES", "HELD_OUT_FAMILIES", "TASK_FAMILIES", "TEACHERS", "LAB_ARCHS", "LAB_TASKS", "DatasetSpec", "LabPaths", "build_lab", "chainsum_pool",
    "eval_rows",
    "extract_answer", "get_family", "lab_students", "pretrain", "standard_pool", "student_path",
    "students_dir", "verify",
]
