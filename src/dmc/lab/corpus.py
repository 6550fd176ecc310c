"""The generic lab corpus the students are pretrained on.

It gives partial capability without teaching the pool's procedures outright: arithmetic and list
facts (single operations), counting sequences, lab questions answered directly ("The answer is
X."), questions restated in symbols without solving them ("Start with 5. Then + 3, - 2." — reading
the operations in order is what tiny students find hardest), and a small share of full traces in
several styles on easy questions. Questions of the standard lab eval set
(seed 0) never appear in it.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from dmc.lab.build import dataset_rows, eval_problems
from dmc.lab.pool import DatasetSpec
from dmc.lab.tasks import TASK_FAMILIES, ListOps, Problem

# The eval questions excluded from pretraining: the first N of the seed-0 eval set of each family
# (eval sets are generated sequentially, so every n_eval ≤ N gets a prefix of these).
EXCLUDED_EVAL_SEED, EXCLUDED_EVAL_N = 0, 512


@dataclass(frozen=True)
class CorpusRecipe:
    """How many documents of each kind, and what the question/trace documents contain."""

    n_docs: int = 20_000
    weights: dict[str, float] = field(default_factory=lambda: {
        "arith_facts": 0.35, "list_facts": 0.22, "counting": 0.03, "qa": 0.25, "parse": 0.08,
        "traces": 0.07})
    qa_distributions: dict[str, float] = field(default_factory=lambda: {"easy": 0.5, "standard": 0.3, "hard": 0.2})
    trace_teachers: tuple[str, ...] = ("stepwise", "verbose", "terse", "redundant")
    trace_distributions: tuple[str, ...] = ("easy",)
    lines_per_doc: int = 6

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _arith_fact(rng: random.Random) -> str:
    # the operands the lab's step-by-step traces need most: a running total below 200 and a
    # one- or two-digit operand
    r = rng.random()
    a = rng.randint(10, 99) if r < 0.6 else rng.randint(100, 199) if r < 0.8 else rng.randint(0, 9)
    b = rng.randint(1, 9) if rng.random() < 0.65 else rng.randint(10, 49)
    if rng.random() < 0.5 and b <= a:
        return f"{a} - {b} = {a - b}"
    return f"{a} + {b} = {a + b}"


_LISTOPS = ListOps()


def _list_fact(rng: random.Random) -> str:
    s = tuple(rng.randint(0, 9) for _ in range(rng.randint(2, 5)))
    kind = rng.choice(ListOps._KINDS)
    op = ("append", rng.randint(0, 9)) if kind == "append" else (kind,)
    return f"{_LISTOPS.describe_op(op)} {_LISTOPS.fmt_state(s)} = {_LISTOPS.fmt_state(_LISTOPS.apply(s, op))}"


def _counting(rng: random.Random) -> str:
    start, step = rng.randint(0, 300), rng.choice([1, 1, 2, 5, 10])
    return ", ".join(str(start + i * step) for i in range(rng.randint(4, 10)))


def _chat(tokenizer: Any, question: str, response: str) -> str:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": question}, {"role": "assistant", "content": response}], tokenize=False)


def corpus_documents(recipe: CorpusRecipe, seed: int, tokenizer: Any) -> list[str]:
    """The corpus as text documents, in a seeded order (chat-formatted where there is a question)."""
    rng = random.Random(f"dmc-lab-corpus/{seed}")
    excluded = {p.question for f in TASK_FAMILIES for p in eval_problems(f, EXCLUDED_EVAL_N, EXCLUDED_EVAL_SEED)}
    kinds = list(recipe.weights)
    counts = {k: int(round(recipe.n_docs * recipe.weights[k])) for k in kinds}
    fams = list(TASK_FAMILIES.values())

    def problem(dist_name: str) -> Problem:
        while True:
            fam = rng.choice(fams)
            p = fam.sample(rng, fam.distributions[dist_name])
            if p.question not in excluded:
                return p

    docs: list[str] = []
    for _ in range(counts.get("arith_facts", 0)):
        docs.append("\n".join(_arith_fact(rng) for _ in range(recipe.lines_per_doc)) + "\n")
    for _ in range(counts.get("list_facts", 0)):
        docs.append("\n".join(_list_fact(rng) for _ in range(recipe.lines_per_doc)) + "\n")
    for _ in range(counts.get("counting", 0)):
        docs.append(_counting(rng) + "\n")
    dnames, dweights = zip(*recipe.qa_distributions.items())
    for _ in range(counts.get("qa", 0)):
        p = problem(rng.choices(dnames, dweights)[0])
        docs.append(_chat(tokenizer, p.question, f"The answer is {p.gold}."))
    for _ in range(counts.get("parse", 0)):
        p = problem(rng.choices(dnames, dweights)[0])
        fam = TASK_FAMILIES[p.family]
        docs.append(_chat(tokenizer, p.question, f"Start with {fam.fmt_state(p.start)}. Then "
                          + ", ".join(fam.fmt_op(op) for op in p.ops) + "."))
    for i in range(counts.get("traces", 0)):
        p = problem(rng.choice(recipe.trace_distributions))
        teacher = recipe.trace_teachers[i % len(recipe.trace_teachers)]
        row = dataset_rows(DatasetSpec(f"corpus-{teacher}", p.family, teacher, p.distribution), [p],
                           seed=rng.randrange(2**31))[0]
        docs.append(_chat(tokenizer, row["question"], row["response"]))
    rng.shuffle(docs)
    return docs


def pack(docs: list[str], tokenizer: Any, block_size: int) -> list[list[int]]:
    """Concatenate the tokenized documents and cut the stream into blocks of `block_size` tokens."""
    stream: list[int] = []
    for ids in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        stream += ids
    n = len(stream) // block_size
    return [stream[i * block_size : (i + 1) * block_size] for i in range(n)]
