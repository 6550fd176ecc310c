"""On-disk cache of statistics: Parquet shards, one per finished batch, written atomically.

Layout: <root>/<table>/<student fingerprint>/<settings hash>/<shard>.parquet, plus a
settings.json beside the shards describing what they hold. A shard is written to a hidden
temporary file in the same directory and renamed into place (os.replace), so a reader sees a
complete shard or none, and a process killed at any moment (even SIGKILL) loses only the batch it
was computing. Loading concatenates the shards and drops duplicate keys (two runs racing on the
same work both write; the rows are equivalent).
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dmc.data.schema import content_hash
from dmc.io import atomic_write, atomic_write_bytes
from dmc.stats.tables import CACHE_KEYS, CACHE_SCHEMAS

log = logging.getLogger(__name__)

_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,80}$")


def _safe_name(s: str) -> str:
    """A directory name for a fingerprint or hash: itself when path-safe, else its hash."""
    return s if _SAFE.match(s) and s not in {".", ".."} else "h-" + content_hash(s)


def atomic_write_parquet(table: pa.Table, path: str | Path) -> None:
    """Write a Parquet file atomically (dmc.io.atomic_write: temporary file beside it, then os.replace)."""
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


@dataclass
class LoadReport:
    """What a load found: shards read, rows kept, and shards that could not be used (with why)."""

    shards: int = 0
    rows: int = 0
    duplicates: int = 0
    bad_shards: list[str] = field(default_factory=list)


class StatsCache:
    """Parquet shards keyed by (sample content hash, student fingerprint, settings hash)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def directory(self, table: str, fingerprint: str, settings_hash: str) -> Path:
        if table not in CACHE_SCHEMAS:
            raise ValueError(f"unknown table {table!r}; expected one of {sorted(CACHE_SCHEMAS)}")
        return self.root / table / _safe_name(fingerprint) / _safe_name(settings_hash)

    def describe(self, table: str, fingerprint: str, settings_hash: str, info: dict) -> None:
        """Record, once, what a shard directory holds (settings, fingerprint) as settings.json."""
        path = self.directory(table, fingerprint, settings_hash) / "settings.json"
        if not path.exists():
            blob = json.dumps({"table": table, "fingerprint": fingerprint,
                               "settings_hash": settings_hash, **info}, indent=2, sort_keys=True)
            atomic_write_bytes(path, blob.encode())

    def write_shard(self, table: str, fingerprint: str, settings_hash: str, rows: pa.Table) -> Path:
        """Write one batch of finished rows as a new shard; returns its path."""
        schema = CACHE_SCHEMAS[table]
        if not rows.schema.equals(schema):
            raise ValueError(f"shard for table {table!r} has schema\n{rows.schema}\nexpected\n{schema}")
        name = f"{os.getpid()}-{uuid.uuid4().hex}.parquet"
        path = self.directory(table, fingerprint, settings_hash) / name
        atomic_write_parquet(rows, path)
        return path

    def load(self, table: str, fingerprint: str, settings_hash: str) -> tuple[pa.Table, LoadReport]:
        """All cached rows for this student and settings, de-duplicated by key.

        Unreadable shards or shards with a foreign schema are logged, listed in the report and
        skipped; they never stop the load. Temporary files of writes in progress are not read.
        """
        schema = CACHE_SCHEMAS[table]
        d = self.directory(table, fingerprint, settings_hash)
        report = LoadReport()
        parts: list[pa.Table] = []
        files = sorted(p for p in d.glob("*.parquet") if not p.name.startswith(".")) if d.is_dir() else []
        for p in files:
            try:
                t = pq.read_table(p)
                if not t.schema.equals(schema):
                    t = t.select(schema.names).cast(schema)
            except Exception as e:  # noqa: BLE001 - any unreadable shard is reported, not fatal
                msg = f"{p}: {type(e).__name__}: {e}"
                log.warning("ignoring unreadable cache shard %s", msg)
                report.bad_shards.append(msg)
                continue
            parts.append(t)
            report.shards += 1
        if not parts:
            return schema.empty_table(), report
        allrows = pa.concat_tables(parts)
        keys = CACHE_KEYS[table]
        deduped = _drop_duplicate_keys(allrows, keys)
        report.rows = deduped.num_rows
        report.duplicates = allrows.num_rows - deduped.num_rows
        return deduped, report


def _drop_duplicate_keys(t: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """Keep the first row of each key (shards are read in name order)."""
    if t.num_rows == 0:
        return t
    idx = pa.array(range(t.num_rows), pa.int64())
    firsts = (t.select(list(keys)).append_column("__i", idx)
              .group_by(list(keys), use_threads=False).aggregate([("__i", "min")]))
    keep = pc.sort_indices(firsts["__i_min"])
    return t.take(pc.take(firsts["__i_min"], keep))
