"""Write the lab's candidate pool and eval set as JSONL in DESIGN.md §2's schema.

Layout: OUT/<family>/pool/<dataset>.jsonl, OUT/<family>/eval.jsonl, OUT/lab.json (manifest).
Everything is a function of (family, n, n_eval, seed): the same arguments give identical bytes.
Besides the task families, `chainsum` (DESIGN.md §8's testbed, `dmc.lab.chainsum`) is built the
same way when asked for by name; it keeps its reference generator's questions and seeding.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from dmc.io import atomic_write_text

from dmc.lab import chainsum
from dmc.lab.pool import EVAL_DISTRIBUTION, DatasetSpec, standard_pool
from dmc.lab.tasks import DEV_FAMILIES, HELD_OUT_FAMILIES, TASK_FAMILIES, Problem, get_family
from dmc.lab.teachers import get_teacher

LAB_VERSION = "1"

# what `build_lab` (and `dmc lab build --task`) can build; with no task, only TASK_FAMILIES
LAB_TASKS: tuple[str, ...] = (*TASK_FAMILIES, *DEV_FAMILIES, *HELD_OUT_FAMILIES, chainsum.NAME)


@dataclass(frozen=True)
class LabPaths:
    """Where one family's lab data was written."""

    family: str
    eval: Path
    pool: dict[str, Path]


def _qrng(seed: int, family: str, what: str) -> random.Random:
    # string seeds hash with sha512 in `random`, stable across processes and platforms
    return random.Random(f"dmc-lab/{seed}/{family}/{what}")


def eval_problems(family: str, n_eval: int, seed: int = 0) -> list[Problem]:
    """The eval questions: `n_eval` distinct questions from the family's standard distribution."""
    fam = get_family(family)
    dist = fam.distributions[EVAL_DISTRIBUTION]
    rng = _qrng(seed, family, "eval")
    out: list[Problem] = []
    seen: set[str] = set()
    for _ in range(n_eval * 50):
        if len(out) == n_eval:
            break
        p = fam.sample(rng, dist)
        if p.question not in seen:
            seen.add(p.question)
            out.append(p)
    if len(out) < n_eval:
        raise ValueError(f"{family}: could only generate {len(out)} distinct eval questions of {n_eval}")
    return out


def pool_problems(family: str, distribution: str, n: int, seed: int, exclude: set[str]) -> list[Problem]:
    """`n` questions of a distribution, none of them in `exclude` (the eval questions).

    Seeded by (seed, family, distribution) only, so every teacher on this distribution answers
    the same questions."""
    fam = get_family(family)
    dist = fam.distributions[distribution]
    rng = _qrng(seed, family, f"pool/{distribution}")
    out: list[Problem] = []
    for _ in range(n * 50):
        if len(out) == n:
            break
        p = fam.sample(rng, dist)
        if p.question not in exclude:
            out.append(p)
    if len(out) < n:
        raise ValueError(f"{family}/{distribution}: could only generate {len(out)} questions of {n}")
    return out


def dataset_rows(spec: DatasetSpec, problems: list[Problem], seed: int) -> list[dict[str, Any]]:
    """The rows of one candidate dataset: the spec's teacher answering `problems`."""
    spec.validate()
    fam = get_family(spec.family)
    teacher = get_teacher(spec.teacher)
    rng = random.Random(f"dmc-lab/{seed}/{spec.family}/teacher/{spec.name}")
    rows = []
    for i, p in enumerate(problems):
        tr = teacher(fam, p, rng, **spec.params)
        rows.append({
            "id": f"{spec.family}-{spec.name}-{i}",
            "question": p.question,
            "response": tr.text,
            "gold": p.gold,
            "meta": {
                "family": spec.family, "dataset": spec.name, "teacher": spec.teacher,
                "distribution": spec.distribution, "steps": len(p.ops), "size": p.size,
                "teacher_correct": fam.verify(tr.answer, p.gold), "wrong_step": tr.wrong_step,
                "verifier": f"lab:{spec.family}",
            },
        })
    return rows


def eval_rows(family: str, n_eval: int, seed: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"{family}-eval-{i}", "question": p.question, "gold": p.gold,
         "meta": {"family": family, "distribution": p.distribution, "steps": len(p.ops), "size": p.size,
                  "verifier": f"lab:{family}"}}
        for i, p in enumerate(eval_problems(family, n_eval, seed))
    ]


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(Path(path), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def build_family(out: Path, family: str, n: int = 256, n_eval: int = 128, seed: int = 0,
                 pool: list[DatasetSpec] | None = None) -> LabPaths:
    """Write one family's pool and eval set under OUT/<family>/."""
    out = Path(out)
    evs = eval_rows(family, n_eval, seed)
    exclude = {r["question"] for r in evs}
    eval_path = out / family / "eval.jsonl"
    write_jsonl(eval_path, evs)
    paths: dict[str, Path] = {}
    questions: dict[str, list[Problem]] = {}
    for spec in pool or standard_pool(family):
        if spec.family != family:
            raise ValueError(f"dataset {spec.name!r} belongs to family {spec.family!r}, not {family!r}")
        if spec.distribution not in questions:
            questions[spec.distribution] = pool_problems(family, spec.distribution, n, seed, exclude)
        p = out / family / "pool" / f"{spec.name}.jsonl"
        write_jsonl(p, dataset_rows(spec, questions[spec.distribution], seed))
        paths[spec.name] = p
    return LabPaths(family, eval_path, paths)


def build_chainsum(out: Path, n: int = 256, n_eval: int = 128, seed: int = 0) -> LabPaths:
    """Write the chain-sum testbed's pool and eval set under OUT/chainsum/."""
    out = Path(out)
    eval_path = out / chainsum.NAME / "eval.jsonl"
    write_jsonl(eval_path, chainsum.eval_rows(n_eval, seed))
    paths: dict[str, Path] = {}
    for name, rows in chainsum.pool_rows(n, seed).items():
        paths[name] = out / chainsum.NAME / "pool" / f"{name}.jsonl"
        write_jsonl(paths[name], rows)
    return LabPaths(chainsum.NAME, eval_path, paths)


def _manifest_entry(out: Path, lp: LabPaths) -> dict[str, Any]:
    """lab.json's record of one built family: where its files are and how each dataset was made."""
    if lp.family == chainsum.NAME:
        description, eval_dist = chainsum.DESCRIPTION, chainsum.EVAL_MIX
        specs: list[Any] = chainsum.chainsum_pool()
    else:
        description, eval_dist, specs = get_family(lp.family).description, EVAL_DISTRIBUTION, standard_pool(lp.family)
    entry: dict[str, Any] = {
        "description": description,
        "eval": str(lp.eval.relative_to(out)),
        "eval_distribution": eval_dist,
        "pool": {
            s.name: {"path": str(lp.pool[s.name].relative_to(out)),
                     **{k: v for k, v in asdict(s).items() if k not in ("name", "family")}}
            for s in specs
        },
    }
    if lp.family == chainsum.NAME:
        entry["distributions"] = {m.name: {"terms": list(m.steps), "digits": list(m.size)}
                                  for m in chainsum.MIXES.values()}
    return entry


def build_lab(out: str | Path, family: str | None = None, n: int = 256, n_eval: int = 128,
              seed: int = 0) -> dict[str, LabPaths]:
    """Write the standard pool and eval set of `family` (default: every task family; `chainsum`
    only when named) under `out`, plus OUT/lab.json describing what was built: the families of an
    earlier build into `out` with the same seed, n and n_eval stay listed. Returns the paths per
    family."""
    if n < 1 or n_eval < 1:
        raise ValueError(f"n and n_eval must be positive (got n={n}, n_eval={n_eval})")
    out = Path(out)
    families = [family] if family else list(TASK_FAMILIES)
    result = {f: build_chainsum(out, n, n_eval, seed) if f == chainsum.NAME else build_family(out, f, n, n_eval, seed)
              for f in families}
    head = {"lab_version": LAB_VERSION, "seed": seed, "n": n, "n_eval": n_eval}
    families: dict[str, Any] = {}
    path = out / "lab.json"
    if path.is_file():  # families built one at a time into one directory with the same arguments add up
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        if isinstance(old, dict) and {k: old.get(k) for k in head} == head:
            families = dict(old.get("families") or {})
    families.update({f: _manifest_entry(out, lp) for f, lp in result.items()})
    atomic_write_text(path, json.dumps({**head, "families": families}, indent=2) + "\n")
    return result
