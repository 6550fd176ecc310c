"""Batch `Sample`s into tensors with the loss on the response tokens only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dmc.data.schema import Sample

IGNORE_INDEX = -100


def ids_key(input_ids: Sequence[int]) -> bytes:
    """A row's token ids as a dictionary key."""
    return np.asarray(input_ids, dtype=np.int64).tobytes()


class SFTCollator:
    """Encode samples with `Student.encode` and build `input_ids`, `attention_mask`, `labels`.

    Labels are -100 everywhere except the response tokens `[response_start, response_end)` and,
    when the response was not truncated, the end-of-turn token the template places right after it
    (only if it is one of the student's stop tokens): without it the student never learns to stop.
    Sequences are right-padded with the tokenizer's pad token (EOS when it has none). Encodings are
    cached by sample content hash, since a mixture draws the same rows repeatedly; `lookup` finds
    the sample (and its encoding) behind a row of input ids, which is how the curriculum reads the
    token statistics of the rows it trains on from the training forward pass.
    """

    def __init__(self, student, max_length: int, *, pad_to_multiple_of: int | None = None, cache: bool = True):
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.student = student
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        tok = student.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        if pad is None:
            raise ValueError(f"student {student.name!r}: tokenizer has neither a pad nor an EOS token to pad with")
        self.pad_id = int(pad)
        self._stop = set(student.stop_token_ids)
        self._cache: dict[str, tuple[list[int], list[int]]] | None = {} if cache else None
        self._by_ids: dict[bytes, tuple[Sample, Any]] = {}  # input ids -> (sample, Encoded)

    def encode(self, sample: Sample) -> tuple[list[int], list[int]]:
        """(input_ids, labels) for one sample."""
        key = sample.hash
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        try:
            enc = self.student.encode(sample.prompt, sample.response, max_length=self.max_length)
        except Exception as e:
            where = f"dataset {sample.dataset!r}, " if sample.dataset else ""
            raise ValueError(f"cannot encode sample {where}id {sample.id!r}: {e}") from e
        ids = list(enc.input_ids)
        labels = [IGNORE_INDEX] * len(ids)
        labels[enc.response_start : enc.response_end] = ids[enc.response_start : enc.response_end]
        if not enc.truncated and enc.response_end < len(ids) and ids[enc.response_end] in self._stop:
            labels[enc.response_end] = ids[enc.response_end]
        out = (ids, labels)
        if self._cache is not None:
            self._cache[key] = out
            self._by_ids[ids_key(ids)] = (sample, enc)
        return out

    def lookup(self, input_ids: Sequence[int]) -> tuple[Sample, Any] | None:
        """(sample, Encoded) of a row this collator encoded, by its unpadded input ids; None if unknown."""
        return self._by_ids.get(ids_key(input_ids))

    def __call__(self, samples: Sequence[Sample]) -> dict[str, Any]:
        if not samples:
            raise ValueError("empty batch")
        pairs = []
        for s in samples:
            if not isinstance(s, Sample):
                raise TypeError(f"SFTCollator expects dmc Sample rows, got {type(s).__name__}")
            pairs.append(self.encode(s))
        n = max(len(ids) for ids, _ in pairs)
        if self.pad_to_multiple_of:
            n = -(-n // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(pairs), n), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(pairs), n), dtype=torch.long)
        labels = torch.full((len(pairs), n), IGNORE_INDEX, dtype=torch.long)
        for i, (ids, lab) in enumerate(pairs):
            input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention[i, : len(ids)] = 1
            labels[i, : len(lab)] = torch.tensor(lab, dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
