"""Run-directory files: an append-only JSONL log (atomic writes and the JSONL line format come from dmc.io)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from dmc.io import atomic_write_json, json_line, write_jsonl

__all__ = ["RunLog", "atomic_write_json"]


class RunLog:
    """Append-only JSONL event log (`log.jsonl`): one JSON object per line, flushed per event.

    `enabled=False` (the ranks other than 0 of a distributed run) keeps the log read-only: every
    rank logs the same events and one process writes them."""

    def __init__(self, path: str | Path, *, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, event: dict[str, Any]) -> None:
        line = json_line(event)  # serialized before opening: a bad event leaves the log untouched
        if not self.enabled:
            return
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{self.path}:{n}: not valid JSON ({e.msg})") from e
        return out

    def truncate_after(self, step: int) -> int:
        """Drop events logged after optimizer step `step` (a resumed run re-logs them); returns how many."""
        if not self.enabled:
            return 0
        events = self.read()
        keep = [e for e in events if int(e.get("step", 0)) <= step]
        if len(keep) != len(events):
            write_jsonl(self.path, keep)
        return len(events) - len(keep)
