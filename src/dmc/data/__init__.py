"""Data model and loaders (DESIGN.md §2)."""

from dmc.data.loading import (
    DataError,
    FieldMap,
    Pool,
    Skipped,
    load_dataset,
    load_eval_set,
    load_pool,
    save_dataset,
)
from dmc.data.reasoning import final_answer_text
from dmc.data.schema import CandidateDataset, EvalItem, Message, Sample, content_hash
from dmc.io import write_jsonl  # the one JSONL writer, re-exported: `from dmc.data import write_jsonl`

__all__ = [
    "CandidateDataset", "DataError", "EvalItem", "FieldMap", "Message", "Pool", "Sample", "Skipped", "content_hash",
    "final_answer_text", "load_dataset", "load_eval_set", "load_pool", "save_dataset", "write_jsonl",
]
