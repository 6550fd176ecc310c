"""CHAMP (pip package `champ-dataset`) as a DMC pool: one candidate dataset per teacher, and an eval set.

CHAMP ships competition problems with real solutions by GPT-4, GPT-4 Turbo, GPT-3.5 and PaLM 2
(each a conversation: system, the problem, the model's solution, "now summarize the answer above
in one sentence", the model's summary) and a human reference solution. This script writes

    OUT/pool/{gpt-4,gpt-4-turbo,gpt-3.5,palm-2,human}.jsonl   one dataset per teacher
    OUT/eval.jsonl                                             the same problems with their gold answers

Every row is `messages` = [system, user (the problem), assistant (the trace)] with the gold
answer: the prompt is the same for every teacher and the eval set, so a problem is one question
(`Sample.question_hash`) across datasets. A model's trace is its solution followed by its
one-sentence summary (the model's own final answer, in the order it wrote them); the human trace is
the reference solution's steps. The zero-shot conversation is used (CHAMP also has hinted and
few-shot variants).

A model row with a missing turn (CHAMP's `error: LENGTH_PREVIOUS`: the summary was never asked
because the solution hit the model's length limit) has no final answer: it is left out of that
teacher's dataset, and the script prints how many were left out, per teacher and reason. A
solution cut by the teacher's own length limit (`LENGTH_CURRENT`) is left out with it.

Usage: .venv/bin/python experiments/champ/build_pool.py --out runs/champ/data [--n 16]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

from dmc.io import write_jsonl

TEACHERS = {"GPT-4": "gpt-4", "GPT-4 Turbo": "gpt-4-turbo", "GPT-3.5": "gpt-3.5", "PaLM 2 Medium": "palm-2"}
HUMAN = "human"
VARIANT = "0-Shot"
_ROLES = {"System": "system", "User": "user"}  # CHAMP's `Model.<name>` turns are the assistant's


def champ_file() -> Path:
    """CHAMP's JSON inside the installed package, found without importing it (it needs natsort)."""
    spec = importlib.util.find_spec("champ_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("champ-dataset is not installed: pip install --no-deps champ-dataset")
    return Path(next(iter(spec.submodule_search_locations))) / "dataset_files" / "v0.json"


def _role(champ_role: str) -> str:
    return "assistant" if champ_role.startswith("Model.") else _ROLES[champ_role]


def _model_trace(conv: dict) -> tuple[list[dict], str] | str:
    """([system, user], trace) of one model conversation, or why it is left out."""
    msgs = conv.get("messages") or []
    missing = [m for m in msgs if m.get("text") is None]
    if missing:
        return f"missing turn ({missing[0].get('error') or 'no text'})"
    if any(m.get("error") == "LENGTH_CURRENT" for m in msgs):
        return "cut by the teacher's length limit"
    roles = [_role(m["role"]) for m in msgs]
    if roles[:2] != ["system", "user"] or "assistant" not in roles[2:]:
        return f"unexpected turns ({', '.join(roles)})"
    prompt = [{"role": r, "content": m["text"]} for r, m in zip(roles[:2], msgs[:2])]
    answers = [m["text"].strip() for r, m in zip(roles[2:], msgs[2:]) if r == "assistant"]
    return prompt, "\n\n".join(a for a in answers if a)


def convert(data: dict, n: int | None = None) -> tuple[dict[str, list[dict]], list[dict], Counter]:
    """CHAMP's JSON → ({dataset: rows}, eval rows, Counter of (dataset, reason) left out).

    The first `n` problems (CHAMP's order), all when None. The system and user turns are CHAMP's
    own zero-shot prompt, taken from the first model conversation that has them.
    """
    problems = list(data["problems"].values())[:n]
    pool: dict[str, list[dict]] = {name: [] for name in [*TEACHERS.values(), HUMAN]}
    evals: list[dict] = []
    skipped: Counter = Counter()
    for p in problems:
        pid, gold = p["identifier"], p["_answer"]
        meta = {"problem": pid, "category": p.get("category")}
        prompt = None
        for teacher, name in TEACHERS.items():
            got = _model_trace((p.get("conversations") or {}).get(f"{teacher}|{VARIANT}", {}))
            if isinstance(got, str):
                skipped[(name, got)] += 1
                continue
            prompt, trace = got
            pool[name].append({"id": pid, "messages": [*prompt, {"role": "assistant", "content": trace}],
                               "gold": gold, "meta": {**meta, "teacher": teacher}})
        if prompt is None:  # no teacher has this problem: no prompt to share with the human trace
            skipped[(HUMAN, "no model conversation to take the prompt from")] += 1
            continue
        steps = [s["_text"].strip() for s in (p.get("solution") or {}).get("steps") or []]
        if steps:
            pool[HUMAN].append({"id": pid, "messages": [*prompt, {"role": "assistant", "content": " ".join(steps)}],
                                "gold": gold, "meta": {**meta, "teacher": HUMAN}})
        else:
            skipped[(HUMAN, "no reference solution")] += 1
        evals.append({"id": pid, "messages": prompt, "gold": gold, "meta": meta})
    return pool, evals, skipped


def write_pool(data: dict, out: str | Path, n: int | None = None) -> tuple[dict[str, int], Counter]:
    """Write OUT/pool/<dataset>.jsonl and OUT/eval.jsonl; returns rows per dataset and what was left out."""
    out = Path(out)
    pool, evals, skipped = convert(data, n)
    for name, rows in pool.items():
        write_jsonl(out / "pool" / f"{name}.jsonl", rows)
    write_jsonl(out / "eval.jsonl", evals)
    return {name: len(rows) for name, rows in pool.items()}, skipped


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory: pool/ and eval.jsonl")
    ap.add_argument("--n", type=int, default=None, help="the first N problems (default: all 270)")
    ap.add_argument("--champ", default=None, help="CHAMP's JSON (default: the installed package's v0.json)")
    a = ap.parse_args(argv)
    data = json.loads(Path(a.champ or champ_file()).read_text(encoding="utf-8"))
    counts, skipped = write_pool(data, a.out, a.n)
    n_problems = len(list(data["problems"])[:a.n])
    print(f"{n_problems} problems → {a.out}/pool: " + ", ".join(f"{k} {v}" for k, v in counts.items())
          + f"; {a.out}/eval.jsonl")
    for (name, reason), k in sorted(skipped.items()):
        print(f"left out of {name}: {k} row{'s' if k != 1 else ''} ({reason})", file=sys.stderr)


if __name__ == "__main__":
    main()
