"""Accuracy of a student on an eval set: greedy pass@1, and optionally pass@k / maj@k from k samples.

Scores (all in [0, 1], higher = better, NaN when no question could be graded):

- `accuracy`: greedy pass@1 = correct / (correct + wrong) over the greedy answers;
- `pass_at_k`: fraction of questions with at least one correct answer among k samples;
- `maj_at_k`: fraction of questions whose majority answer among the k samples is correct;
- `sample_accuracy`: mean per-sample correctness (an unbiased pass@1 estimate at the sampling
  temperature).

`ungradable` answers (the grader could not decide: no gold, an unreadable gold, a verifier
timeout) are counted separately and excluded from every denominator; they never count as wrong.
A question's pass@k is ungradable when no sample is correct and some sample is ungradable; its
maj@k is ungradable when the majority answer's grade is.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dmc.data.schema import EvalItem
from dmc.grading import grade_many, normalize_text, parse_number
from dmc.students.generation import generate
from dmc.students.vllm_engine import check_engine, generate_vllm
from dmc.io import atomic_write
from dmc.settings import Spec

# Declared once, used by `dmc eval` and by training's periodic and final evaluations.
EVAL_MAX_NEW_TOKENS = Spec("Generation budget per eval answer.", default=256, flag="--eval-max-new-tokens", min=1)
EVAL_BATCH_SIZE = Spec("Questions per eval generation batch.", default=16, flag="--eval-batch-size", result=False,
                       min=1)


@dataclass
class EvalResult:
    """Summary scores plus one row per question (`per_question`)."""

    n: int
    n_correct: int
    n_wrong: int
    n_ungradable: int
    accuracy: float
    n_truncated: int
    k: int = 1
    pass_at_k: float | None = None
    maj_at_k: float | None = None
    sample_accuracy: float | None = None
    n_ungradable_pass_at_k: int | None = None
    n_ungradable_maj_at_k: int | None = None
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    per_question: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    out_dir: Path | None = None

    def summary(self) -> dict[str, Any]:
        """The scalar results (JSON-ready; NaN becomes None)."""
        keys = ("n", "n_correct", "n_wrong", "n_ungradable", "accuracy", "n_truncated", "k", "pass_at_k", "maj_at_k",
                "sample_accuracy", "n_ungradable_pass_at_k", "n_ungradable_maj_at_k", "seconds")
        out: dict[str, Any] = {}
        for key in keys:
            v = getattr(self, key)
            out[key] = None if isinstance(v, float) and math.isnan(v) else v
        out["settings"] = dict(self.settings)
        return out


def _rate(correct: int, gradable: int) -> float:
    return correct / gradable if gradable else math.nan


def _vote_key(answer: str) -> str:
    """Answers that denote the same number or the same normalized text share a vote."""

    num = parse_number(answer)
    if num is not None:
        return f"num:{num.value}"
    return f"text:{normalize_text(answer)}"


def majority(answers: Sequence[str | None], statuses: Sequence[str]) -> tuple[str | None, str]:
    """The most common extracted answer (ties: the one seen first) and its grade status.

    With no extracted answer at all the majority is None and the status `wrong`.
    """
    keyed = [(_vote_key(a), a, s) for a, s in zip(answers, statuses) if a is not None]
    if not keyed:
        return None, "wrong"
    counts = Counter(k for k, _, _ in keyed)
    best = max(counts.values())
    for k, a, s in keyed:  # first occurrence among the most voted
        if counts[k] == best:
            return a, s
    raise AssertionError("unreachable")


def pass_status(statuses: Sequence[str]) -> str:
    """pass@k of one question: correct if any sample is; wrong if all are wrong; else ungradable."""
    if any(s == "correct" for s in statuses):
        return "correct"
    if all(s == "wrong" for s in statuses):
        return "wrong"
    return "ungradable"


def _score(status: str) -> float:
    return {"correct": 1.0, "wrong": 0.0}.get(status, math.nan)


def save_eval(result: EvalResult, out_dir: str | Path) -> Path:
    """Write per_question.parquet, per_question.jsonl and summary.json (each atomically)."""
    out = Path(out_dir)
    df = result.per_question

    def write_jsonl(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(_plain(rec), ensure_ascii=False) + "\n" for rec in df.to_dict(orient="records"))

    def write_summary(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(_plain(result.summary()), f, indent=2, ensure_ascii=False)
            f.write("\n")

    atomic_write(out / "per_question.parquet", lambda tmp: df.to_parquet(tmp, index=False))
    atomic_write(out / "per_question.jsonl", write_jsonl)
    atomic_write(out / "summary.json", write_summary)
    return out


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def evaluate(
    student,
    eval_items: Sequence[EvalItem],
    *,
    k: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = EVAL_MAX_NEW_TOKENS.default,
    batch_size: int = EVAL_BATCH_SIZE.default,
    verifier: str = "auto",
    seed: int = 0,
    out_dir: str | Path | None = None,
    engine: str = "transformers",
) -> EvalResult:
    """Greedy pass@1 of `student` on `eval_items`; with k > 1 also k samples at `temperature`
    (which must then be > 0) for pass@k, maj@k and the sampled pass@1. `engine` generates the
    answers: transformers, or vllm (dmc.students.vllm_engine; from the student's source weights).

    Writes per-question Parquet + JSONL and summary.json to `out_dir` when given.
    """

    items = list(eval_items)
    if not items:
        raise ValueError("evaluate: the eval set is empty")
    if k < 1:
        raise ValueError(f"evaluate: k must be >= 1, got {k}")
    if k > 1 and not temperature > 0:
        raise ValueError(f"evaluate: k={k} samples need temperature > 0 (got {temperature}); greedy pass@1 is always computed")
    for n, it in enumerate(items):
        if not isinstance(it, EvalItem):
            raise TypeError(f"evaluate: eval_items[{n}] is a {type(it).__name__}, not an EvalItem")
    check_engine(engine)
    gen = generate_vllm if engine == "vllm" else generate
    t0 = time.perf_counter()
    model = student.model
    was_training = model.training
    model.eval()
    try:
        prompts = [it.prompt for it in items]
        greedy = gen(student, prompts, k=1, temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens,
                          seed=seed, batch_size=batch_size)
        sampled = None
        if k > 1:
            sampled = gen(student, prompts, k=k, temperature=temperature, top_p=top_p,
                               max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size)
    finally:
        model.train(was_training)
    golds = [it.gold for it in items]
    g_grades = grade_many([g[0].text for g in greedy], golds, verifier)
    rows: list[dict[str, Any]] = []
    for it, gens, gr in zip(items, greedy, g_grades):
        gen = gens[0]
        rows.append({
            "id": it.id, "question": it.question, "gold": it.gold,
            "text": gen.text, "answer": gr.answer, "grade": gr.status, "reason": gr.reason,
            "correct": _score(gr.status), "n_tokens": len(gen.token_ids), "truncated": bool(gen.truncated),
        })
    settings = {"k": k, "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens,
                "batch_size": batch_size, "verifier": verifier, "seed": seed,
                "student": getattr(student, "name", None)}
    statuses = [r["grade"] for r in rows]
    n_c, n_w = statuses.count("correct"), statuses.count("wrong")
    result = EvalResult(
        n=len(items), n_correct=n_c, n_wrong=n_w, n_ungradable=statuses.count("ungradable"),
        accuracy=_rate(n_c, n_c + n_w), n_truncated=sum(r["truncated"] for r in rows), k=k, settings=settings,
    )
    if sampled is not None:
        flat_texts = [g.text for gens in sampled for g in gens]
        flat_golds = [it.gold for it, gens in zip(items, sampled) for _ in gens]
        flat = grade_many(flat_texts, flat_golds, verifier)
        pos = 0
        s_correct = s_gradable = 0
        for r, gens in zip(rows, sampled):
            grs = flat[pos:pos + len(gens)]
            pos += len(gens)
            st = [g.status for g in grs]
            maj_answer, maj_status = majority([g.answer for g in grs], st)
            p_status = pass_status(st)
            r.update({
                "samples_text": [g.text for g in gens], "samples_answer": [g.answer for g in grs],
                "samples_grade": st, "n_samples_correct": st.count("correct"),
                "pass_at_k": _score(p_status), "pass_at_k_grade": p_status,
                "maj_answer": maj_answer, "maj_grade": maj_status, "maj_at_k": _score(maj_status),
            })
            s_correct += st.count("correct")
            s_gradable += st.count("correct") + st.count("wrong")
        pk = [r["pass_at_k_grade"] for r in rows]
        mk = [r["maj_grade"] for r in rows]
        result.pass_at_k = _rate(pk.count("correct"), pk.count("correct") + pk.count("wrong"))
        result.maj_at_k = _rate(mk.count("correct"), mk.count("correct") + mk.count("wrong"))
        result.n_ungradable_pass_at_k = pk.count("ungradable")
        result.n_ungradable_maj_at_k = mk.count("ungradable")
        result.sample_accuracy = _rate(s_correct, s_gradable)
    result.per_question = pd.DataFrame(rows)
    result.seconds = round(time.perf_counter() - t0, 3)
    if out_dir is not None:
        result.out_dir = save_eval(result, out_dir)
    return result


def summary_rows(result: EvalResult) -> list[tuple[str, str]]:
    """(label, value) rows for a summary table."""

    def pct(x: float | None) -> str:
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"

    rows = [
        ("questions", str(result.n)),
        ("accuracy (greedy pass@1)", pct(result.accuracy)),
        ("correct / wrong / ungradable", f"{result.n_correct} / {result.n_wrong} / {result.n_ungradable}"),
        ("truncated (hit max_new_tokens)", str(result.n_truncated)),
    ]
    if result.k > 1:
        rows += [
            (f"pass@{result.k}", pct(result.pass_at_k) + (f"  ({result.n_ungradable_pass_at_k} ungradable)" if result.n_ungradable_pass_at_k else "")),
            (f"maj@{result.k}", pct(result.maj_at_k) + (f"  ({result.n_ungradable_maj_at_k} ungradable)" if result.n_ungradable_maj_at_k else "")),
            (f"sampled pass@1 (T={result.settings.get('temperature')})", pct(result.sample_accuracy)),
        ]
    rows.append(("seconds", f"{result.seconds:.1f}"))
    return rows
