"""The built-in lab students: their architectures and where their shipped weights live."""

from __future__ import annotations

import importlib.resources
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StudentArch:
    """A Llama-config architecture for a lab student."""

    name: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    description: str = ""

    def llama_kwargs(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("name"), d.pop("description")
        return d


LAB_ARCHS: dict[str, StudentArch] = {
    a.name: a
    for a in [
        StudentArch("lab-small", 64, 3, 4, 176, "≈0.18M parameters"),
        StudentArch("lab-base", 128, 4, 4, 256, "≈0.72M parameters: twice as wide and one layer deeper than lab-small"),
    ]
}


def get_arch(name: str) -> StudentArch:
    try:
        return LAB_ARCHS[name]
    except KeyError:
        raise KeyError(f"unknown lab student {name!r}; known: {sorted(LAB_ARCHS)}") from None


def students_dir() -> Path:
    """The package folder holding one Hugging Face directory per shipped lab student."""
    return Path(str(importlib.resources.files("dmc.lab") / "students"))


def student_path(name: str) -> Path:
    """The shipped directory of lab student `name` (raises when it is not shipped)."""
    get_arch(name)
    p = students_dir() / name
    if not (p / "config.json").is_file() or not (p / "model.safetensors").is_file():
        raise FileNotFoundError(f"lab student {name!r} is not shipped at {p} (rebuild it with "
                                f"`python -m dmc.lab.rebuild_students`)")
    return p


def lab_students() -> list[str]:
    """Names of the lab students shipped with the package, smallest first."""
    return [n for n in LAB_ARCHS if (students_dir() / n / "model.safetensors").is_file()]
