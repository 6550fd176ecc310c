"""Run-directory files: atomic JSON writes and an append-only JSONL log."""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from pathlib import Path
from typing import Any


def _jsonable(x: Any) -> Any:
    """NaN/inf become null (JSON has no NaN); numpy scalars and paths become plain values."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "item") and callable(x.item):  # numpy / torch scalars
        try:
            return _jsonable(x.item())
        except (TypeError, ValueError):
            pass
    return x


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to a temp file in the same directory, then os.replace it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n")


class RunLog:
    """Append-only JSONL event log (`log.jsonl`): one JSON object per line, flushed per event."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, event: dict[str, Any]) -> None:
        line = json.dumps(_jsonable(event), ensure_ascii=False, allow_nan=False)
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
        events = self.read()
        keep = [e for e in events if int(e.get("step", 0)) <= step]
        if len(keep) != len(events):
            atomic_write_text(self.path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in keep))
        return len(events) - len(keep)
