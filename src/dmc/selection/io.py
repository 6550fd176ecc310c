"""Writing a selection: chat-format JSONL for SFT, plus its manifest (both atomic)."""

from __future__ import annotations

from pathlib import Path

from dmc.io import atomic_write_json, write_jsonl
from dmc.selection.select import Selection


def manifest_path_for(out: str | Path) -> Path:
    """``train.jsonl`` -> ``train.manifest.json``."""
    p = Path(out)
    return p.with_name(f"{p.stem}.manifest.json")


def selection_records(selection: Selection) -> list[dict]:
    """One ``{"messages": [...], "id": ..., "source": ...}`` row per selected sample.

    ``messages`` is the chat shape TRL's SFTTrainer and LLaMA-Factory (``formatting: sharegpt`` with
    OpenAI-style tags) read directly; ``id`` and ``source`` (the candidate dataset) can be dropped.
    """
    return [{"messages": s.messages(), "id": str(s.id), "source": s.dataset} for s in selection.samples]


def write_selection(selection: Selection, out: str | Path, manifest: str | Path | None = None) -> tuple[Path, Path]:
    """Writes the JSONL to ``out`` and the manifest next to it (or to ``manifest``); returns both paths."""
    out = Path(out)
    mpath = Path(manifest) if manifest is not None else manifest_path_for(out)
    write_jsonl(out, selection_records(selection))
    doc = dict(selection.manifest)
    doc["output"] = str(out)
    atomic_write_json(mpath, doc)
    return out, mpath
