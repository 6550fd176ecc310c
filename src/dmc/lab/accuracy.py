"""Greedy-decoding accuracy of a (lab) student on a lab eval set, graded by the exact verifier.

Used to record the shipped students' initial accuracy; the general evaluator is `dmc.evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from dmc.lab.tasks import extract_answer, get_family


@dataclass(frozen=True)
class LabAccuracy:
    """accuracy ∈ [0,1], higher = better; `n_no_answer` traces had no final-answer line."""

    family: str
    n: int
    n_correct: int
    n_no_answer: int

    @property
    def accuracy(self) -> float:
        return self.n_correct / self.n if self.n else float("nan")


@torch.no_grad()
def generate(model: Any, tokenizer: Any, questions: list[str], max_new_tokens: int = 192,
             batch_size: int = 64) -> list[str]:
    """Greedy completions of each question as a single user turn (left-padded batches)."""
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    model.eval()
    out: list[str] = []
    try:
        for i in range(0, len(questions), batch_size):
            prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                                     add_generation_prompt=True)
                       for q in questions[i : i + batch_size]]
            enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
            new = gen[:, enc["input_ids"].shape[1]:]
            out += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return out


def lab_accuracy(model: Any, tokenizer: Any, family: str, rows: list[dict[str, Any]],
                 max_new_tokens: int = 192) -> LabAccuracy:
    """Accuracy on eval rows `{question, gold}` of a lab family (exact verifier, greedy)."""
    fam = get_family(family)
    texts = generate(model, tokenizer, [r["question"] for r in rows], max_new_tokens)
    answers = [extract_answer(t) for t in texts]
    correct = sum(fam.verify(a, r["gold"]) for a, r in zip(answers, rows))
    return LabAccuracy(family, len(rows), correct, sum(a is None for a in answers))
