"""Shared fixtures. Tiny students are built in-process (no download) in a few milliseconds once
the tokenizer has been trained (cached per process)."""

from __future__ import annotations

import pytest
import torch

from dmc.data.schema import CandidateDataset, Sample

# The CPU is shared by parallel test runs; tiny models gain nothing from more threads.
torch.set_num_threads(1)


def addition_dataset(name: str, n: int, style: str, offset: int = 0) -> CandidateDataset:
    """n addition questions ("What is a + b?", a = offset + i), answered step by step (`style`
    "step") or tersely; datasets with the same offset share their questions."""
    out = []
    for i in range(n):
        a, b = i + offset, 2 * i + 3
        q = f"What is {a} + {b}?"
        r = f"{a} + {b} = {a + b}. The answer is {a + b}." if style == "step" else f"The answer is {a + b}."
        out.append(Sample(id=f"{name}{i}", prompt=({"role": "user", "content": q},), response=r, gold=str(a + b),
                          dataset=name))
    return CandidateDataset(name, out)


@pytest.fixture
def tiny_student_factory():
    """The `dmc.students.tiny_student` builder: tiny_student_factory(template, seed=..., ...)."""
    from dmc.students import tiny_student

    return tiny_student


@pytest.fixture
def tiny_student():
    """A fresh random tiny Llama with a Qwen-style (ChatML) template (function scope: safe to train)."""
    from dmc.students import tiny_student as build

    return build("chatml")


@pytest.fixture
def tiny_student_llama3():
    """A fresh tiny student with a Llama-3-style template (BOS, header tokens, <|eot_id|>)."""
    from dmc.students import tiny_student as build

    return build("llama3")


@pytest.fixture
def tiny_student_plain():
    """A fresh tiny student without a chat template (the plain Question:/Answer: format)."""
    from dmc.students import tiny_student as build

    return build("none")


@pytest.fixture(params=["chatml", "llama3", "none"])
def tiny_student_any(request):
    """A fresh tiny student, once per template (chatml, llama3, none)."""
    from dmc.students import tiny_student as build

    return build(request.param)
