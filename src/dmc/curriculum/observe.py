"""Token statistics of the rows being trained on, read from the training forward pass.

The training step already computes the student's logits over every response token of its batch.
`TrainingPassStats` hooks the trained model's forward, and for each row of a training batch that
the collator can name (`collator.lookup(input_ids) -> (sample, encoding)`, as `SFTCollator` does)
keeps the row of the **tokens** table the statistics engine would compute for that sample:
log-probability, rank and entropy of each response token (dmc.stats.core.stats_from_logits, the
engine's own reduction), its token ids and character offsets. The curriculum's re-scorer then
scores a dataset being trained on from these rows besides its probe (every row trained on for the
first time in the last half re-score interval: hundreds where a probe has 16, in the one-pass
regime of large pools), at no extra forward pass. Only a sample's first training pass counts: it precedes any
update on that sample, so it is as held-out as a probe; a later pass measures memorization.

Differences from a probe's statistics, by construction: each row is scored with the weights of the
step it was trained in (up to one re-score interval old), and in training mode (dropout as
configured; none in the lab students or SmolLM2). A row is used only when the statistics engine
would encode it identically (not truncated, within the scoring length).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from dmc.data.schema import Sample
from dmc.io import atomic_write
from dmc.stats.core import stats_from_logits
from dmc.stats.tables import TOKENS_CACHE_SCHEMA, rows_to_table

Lookup = Callable[[Any], "tuple[Sample, Any] | None"]
_NO_PREV = {"logprob_noq": None, "prev_turns": None, "prev_turn_tokens": None, "prev_token_ids": None,
            "prev_logprob": None, "prev_rank": None}


@dataclass
class Observed:
    """What the training pass saw since the last re-score: per dataset, the distinct samples trained
    on (latest statistics per sample), as tokens-cache rows and the samples they belong to."""

    samples: dict[str, dict[str, Sample]] = field(default_factory=dict)  # dataset -> sample hash -> sample
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # sample hash -> tokens-cache row
    lengths: dict[str, int] = field(default_factory=dict)  # sample hash -> input tokens
    steps: dict[str, int] = field(default_factory=dict)  # sample hash -> optimizer step of the pass

    def count(self, dataset: str) -> int:
        return len(self.samples.get(dataset, {}))

    def table(self, hashes: set[str] | None = None) -> pa.Table:
        rows = [r for h, r in self.rows.items() if hashes is None or h in hashes]
        return rows_to_table(rows, TOKENS_CACHE_SCHEMA)

    def write(self, path: Path) -> None:
        """Save as Parquet (with each row's dataset and input length), atomically."""
        owner = {h: d for d, by_hash in self.samples.items() for h in by_hash}
        t = self.table()
        hashes = t["sample_hash"].to_pylist()
        t = t.append_column("dataset", pa.array([owner[h] for h in hashes], pa.string()))
        t = t.append_column("input_length", pa.array([self.lengths[h] for h in hashes], pa.int64()))
        t = t.append_column("step", pa.array([self.steps[h] for h in hashes], pa.int64()))
        atomic_write(path, lambda tmp: pq.write_table(t, tmp))

    @classmethod
    def read(cls, path: Path, samples: Mapping[tuple[str, str], Sample]) -> "Observed":
        """Load what `write` saved; `samples` maps (dataset, sample hash) to the pool's samples."""
        t = pq.read_table(path)
        out = cls()
        datasets, lengths, steps = t["dataset"].to_pylist(), t["input_length"].to_pylist(), t["step"].to_pylist()
        rows = t.select(TOKENS_CACHE_SCHEMA.names).cast(TOKENS_CACHE_SCHEMA).to_pylist()
        for d, n, step, row in zip(datasets, lengths, steps, rows):
            h = row["sample_hash"]
            if (d, h) not in samples:
                raise ValueError(f"{path}: sample {h} of dataset {d!r} is not in this run's pool")
            out.samples.setdefault(d, {})[h] = samples[(d, h)]
            out.rows[h] = row
            out.lengths[h] = int(n)
            out.steps[h] = int(step)
        return out

    def since(self, step: int) -> "Observed":
        """The rows read at optimizer step `step` or later."""
        out = Observed()
        for d, by_hash in self.samples.items():
            for h, s in by_hash.items():
                if self.steps[h] >= step:
                    out.samples.setdefault(d, {})[h] = s
                    out.rows[h], out.lengths[h], out.steps[h] = self.rows[h], self.lengths[h], self.steps[h]
        return out

    def merge(self, other: "Observed") -> None:
        """Add `other`'s rows; a sample both hold keeps its earliest pass (the one before it was trained on)."""
        for d, by_hash in other.samples.items():
            for h, s in by_hash.items():
                if h in self.rows and self.steps[h] <= other.steps[h]:
                    continue
                self.samples.setdefault(d, {})[h] = s
                self.rows[h] = other.rows[h]
                self.lengths[h] = other.lengths[h]
                self.steps[h] = other.steps[h]


class TrainingPassStats:
    """A forward hook that collects the tokens-table rows of the training batches' samples.

    `lookup(input_ids) -> (sample, encoding) | None` names a row (the collator's `lookup`). Only
    forward passes in training mode with gradients on are read (evaluation and re-scoring passes
    are not training passes), and only a sample's first training pass: it comes before any update
    on that sample, so it measures the student on a sample it was not trained on, like a probe;
    later passes (the next epochs) would measure memorization. `seen` holds every sample trained
    on so far; `step` is the optimizer step whose passes come next (set by the curriculum).
    `take()` returns what was collected and starts afresh.
    """

    def __init__(self, lookup: Lookup):
        self.lookup = lookup
        self.observed = Observed()
        self.seen: set[str] = set()
        self.step = 0
        self._handle: Any = None

    def attach(self, model: torch.nn.Module) -> None:
        self.detach()
        self._handle = model.register_forward_hook(self._hook, with_kwargs=True)

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def take(self) -> Observed:
        out, self.observed = self.observed, Observed()
        return out

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if not module.training or not torch.is_grad_enabled():
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        logits = getattr(output, "logits", None)
        if ids is None or logits is None or logits.dim() != 3 or logits.shape[:2] != ids.shape:
            return  # a model that does not return full logits (e.g. logits_to_keep): nothing to read
        mask = kwargs.get("attention_mask")
        lengths = (mask.sum(1) if mask is not None else torch.full((ids.shape[0],), ids.shape[1])).tolist()
        ids_cpu = ids.detach().cpu()
        picked: list[tuple[int, int, int, int, Sample, Any]] = []  # (row, a, b, length, sample, encoding)
        for i, n in enumerate(int(x) for x in lengths):
            hit = self.lookup(ids_cpu[i, :n].numpy())
            if hit is None:
                continue
            sample, enc = hit
            if sample.hash in self.seen or sample.hash in self.observed.rows:
                continue  # trained on before: this pass is not held-out
            a, b = int(enc.response_start), int(enc.response_end)
            if not enc.truncated and 1 <= a < b and len(enc.input_ids) == n:
                picked.append((i, a, b, n, sample, enc))
        if not picked:
            return
        # one reduction over every picked response token of the batch (the engine's own)
        rows = torch.cat([torch.full((b - a,), i, dtype=torch.long) for i, a, b, *_ in picked]).to(logits.device)
        cols = torch.cat([torch.arange(a - 1, b - 1) for _, a, b, *_ in picked]).to(logits.device)
        with torch.no_grad():
            lp, rk, en = (x.cpu().numpy() for x in stats_from_logits(logits[rows, cols].detach().float(),
                                                                      ids[rows, cols + 1]))
        start = 0
        for i, a, b, n, sample, enc in picked:
            sl = slice(start, start + b - a)
            start += b - a
            offs = np.asarray(enc.offsets, dtype=np.int32).reshape(-1, 2)
            self.observed.rows[sample.hash] = {
                "sample_hash": sample.hash, "question_hash": sample.question_hash, "n_tokens": b - a,
                "truncated": False, "token_ids": ids_cpu[i, a:b].numpy().astype(np.int32),
                "logprob": lp[sl].astype(np.float32), "rank": rk[sl].astype(np.int32),
                "entropy": en[sl].astype(np.float32),
                "char_start": offs[:, 0], "char_end": offs[:, 1], **_NO_PREV,
            }
            self.observed.samples.setdefault(sample.dataset, {})[sample.hash] = sample
            self.observed.lengths[sample.hash] = n
            self.observed.steps[sample.hash] = self.step

