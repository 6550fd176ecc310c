"""Atomic file writes and strict JSON, shared by every stage.

A write goes to a hidden temporary file in the target's directory (so the final os.replace is
atomic), created with the umask's ordinary permissions (unlike mkstemp's 0600), and is removed if
the write fails: a killed or failed run never leaves a half-written output.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def jsonable(x: Any) -> Any:
    """`x` as strict JSON values: NaN/inf -> None, numpy/torch scalars and arrays -> Python, paths -> str."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist") and callable(x.tolist):  # numpy scalars and arrays
        return jsonable(x.tolist())
    if hasattr(x, "item") and callable(x.item):  # torch scalars
        return jsonable(x.item())
    return x


def content_hash(obj: Any) -> str:
    """Stable sha256 (hex, 16 chars) of a JSON-serializable object."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def tmp_path(path: Path) -> Path:
    """A hidden, unique temporary path beside `path`."""
    return path.with_name(f".tmp-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call `write(tmp)` on a temporary path beside `path`, fsync it, then move it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    try:
        write(str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def json_line(row: Any) -> str:
    """`row` as one line of strict JSON (no trailing newline): `jsonable` values, UTF-8 text kept
    (ensure_ascii=False), never NaN/Infinity. Raises TypeError/ValueError for what JSON cannot hold."""
    return json.dumps(jsonable(row), ensure_ascii=False, allow_nan=False)


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write `rows` (dicts) as JSONL, one :func:`json_line` per row, atomically (see :func:`atomic_write`).

    A row that cannot be serialized (or is not a dict) raises and leaves `path` as it was: no
    partial file, an existing file intact. Returns `path`.
    """

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for n, row in enumerate(rows, 1):
                if not isinstance(row, dict):
                    raise TypeError(f"{path}: row {n} is a {type(row).__name__}, not a dict")
                f.write(json_line(row) + "\n")

    return atomic_write(path, write)


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e
