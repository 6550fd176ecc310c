"""On-disk cache of statistics: Parquet shards, one per finished batch, written atomically.

Layout: <root>/<table>/<student fingerprint>/<settings hash>/<shard>.parquet, plus a
settings.json beside the shards describing what they hold. A shard is written to a hidden
temporary file in the same directory and renamed into place (os.replace), so a reader sees a
complete shard or none, and a process killed at any moment (even SIGKILL) loses only the batch it
was computing. Loading concatenates the shards and drops duplicate keys.

Processes sharing a cache split the work instead of repeating it: a batch is computed while
holding its claim (:meth:`StatsCache.claim`: an exclusive `flock` on
<dir>/.claims/<batch key>.lock), and the rows other processes finished are taken in before each
batch (:meth:`StatsCache.load` with `seen`), so a batch finished elsewhere is read, not
recomputed (:func:`claimed`). The kernel drops a claim when its process dies, even by SIGKILL:
a killed run never blocks the next one, and its unfinished batch is simply computed again.
Claims are keyed by the batch's content, so two runs form the same batches, and so share the
work, when they ask for the same items with the same batch size; otherwise work may be
duplicated (never corrupted). Without `fcntl` (not POSIX), or on a file system that refuses
locks, claims are not exclusive: work may then be repeated, with the same results.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

try:
    import fcntl
except ImportError:  # not POSIX: claims are taken but not exclusive
    fcntl = None  # type: ignore[assignment]

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dmc.data.schema import content_hash
from dmc.io import atomic_write, atomic_write_bytes
from dmc.stats.tables import CACHE_KEYS, CACHE_SCHEMAS

log = logging.getLogger(__name__)

_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
CLAIMS_DIR = ".claims"
T = TypeVar("T")
_NO_LOCKS_WARNED: set[str] = set()


def _warn_no_locks(path: Path, e: OSError) -> None:
    if str(path.parent) not in _NO_LOCKS_WARNED:
        _NO_LOCKS_WARNED.add(str(path.parent))
        log.warning("cannot lock %s (%s): processes sharing this cache may repeat each other's work", path, e)


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

    def load(self, table: str, fingerprint: str, settings_hash: str,
             seen: set[str] | None = None) -> tuple[pa.Table, LoadReport]:
        """All cached rows for this student and settings, de-duplicated by key.

        Unreadable shards or shards with a foreign schema are logged, listed in the report and
        skipped; they never stop the load. Temporary files of writes in progress are not read.
        seen: shard file names already read; those are skipped and the ones read now are added,
        so repeated calls return only what was written in between (by this or other processes).
        """
        schema = CACHE_SCHEMAS[table]
        d = self.directory(table, fingerprint, settings_hash)
        report = LoadReport()
        parts: list[pa.Table] = []
        names = sorted(n for n in os.listdir(d) if n.endswith(".parquet") and not n.startswith(".")) \
            if d.is_dir() else []
        if seen is not None:
            names = [n for n in names if n not in seen]
            seen.update(names)
        for p in (d / n for n in names):
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

    def claim(self, table: str, fingerprint: str, settings_hash: str, key: str, *,
              wait: bool = False) -> Claim | None:
        """An exclusive claim on the batch `key` of this directory, or None when another process
        holds it (wait=False); wait=True blocks until the holder releases it or dies."""
        d = self.directory(table, fingerprint, settings_hash) / CLAIMS_DIR
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{_safe_name(key)}.lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return None
            except OSError as e:  # a file system without locks (some network mounts): not exclusive
                _warn_no_locks(path, e)
                return Claim(path, fd)
            except BaseException:
                os.close(fd)
                raise
            # The previous holder unlinks the file before releasing it: a lock taken on a file that
            # is no longer at `path` excludes nobody, so take the one that is there now.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                with contextlib.suppress(OSError):  # the holder's pid, for whoever looks; not needed
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                return Claim(path, fd)
            os.close(fd)


class Claim:
    """A held claim (see :meth:`StatsCache.claim`); `release()` or leave its `with` block."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                self.path.unlink()  # while still holding it: see StatsCache.claim
        finally:
            os.close(self._fd)  # releases the lock
            self._fd = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def batch_key(item_keys: Iterable[str]) -> str:
    """The claim key of a batch: a hash of its items' keys, in order."""
    return content_hash(list(item_keys))


def claimed(cache: StatsCache | None, table: str, fingerprint: str, settings_hash: str, batches: Iterable[T],
            key: Callable[[T], str]) -> Iterator[T]:
    """Yield each batch while holding its claim, so that processes sharing `cache` split the work.

    A batch claimed by another process is put off and retried after the others; when only such
    batches remain, this waits for the first one's holder to finish (or die). The caller takes in
    the rows finished elsewhere (`cache.load(..., seen=...)`) before computing a yielded batch and
    skips the items already there, and writes its shard before asking for the next batch (the
    claim is released then). Without a cache, every batch is yielded in order.
    """
    if cache is None:
        yield from batches
        return
    pending = list(batches)
    while pending:
        deferred: list[T] = []
        for b in pending:
            c = cache.claim(table, fingerprint, settings_hash, key(b))
            if c is None:
                deferred.append(b)
                continue
            with c:
                yield b
        if deferred and len(deferred) == len(pending):
            b = deferred.pop(0)  # all held elsewhere: wait for the first rather than spin
            c = cache.claim(table, fingerprint, settings_hash, key(b), wait=True)
            assert c is not None
            with c:
                yield b
        pending = deferred


def _drop_duplicate_keys(t: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    """Keep the first row of each key (shards are read in name order)."""
    if t.num_rows == 0:
        return t
    idx = pa.array(range(t.num_rows), pa.int64())
    firsts = (t.select(list(keys)).append_column("__i", idx)
              .group_by(list(keys), use_threads=False).aggregate([("__i", "min")]))
    keep = pc.sort_indices(firsts["__i_min"])
    return t.take(pc.take(firsts["__i_min"], keep))
