"""Load candidate datasets and eval sets from JSONL, JSON, Parquet, directories or `datasets` objects.

Accepted row shapes (field names configurable with `FieldMap`):

- `question` / `response` / `gold` (DESIGN.md §2)
- OpenAI-style `messages`: a list of {role, content}; the last turn is the assistant's trace
- ShareGPT `conversations`: a list of {from, value} (human/gpt/system)
- `prompt` / `completion`: strings, or lists of messages (TRL's conversational shape)

Every bad row raises (policy "fail") or is skipped and written to a rejects file (policy "skip")
with an error naming the file, the line (1-based; the row for Parquet) and the field at fault.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dmc.data.schema import CandidateDataset, EvalItem, Message, Sample, content_hash
from dmc.io import json_line, write_jsonl

Policy = Literal["fail", "skip"]
SUFFIXES = (".jsonl", ".json", ".parquet")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant"}


class DataError(ValueError):
    """A row that cannot be loaded; names the file, line and field at fault."""

    def __init__(self, file: str, line: int | None, field: str | None, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message
        where = file if line is None else f"{file}:{line}"
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


@dataclass(frozen=True)
class FieldMap:
    """Names of the fields in the input rows."""

    id: str = "id"
    question: str = "question"
    response: str = "response"
    gold: str = "gold"
    meta: str = "meta"
    messages: str = "messages"
    conversations: str = "conversations"
    prompt: str = "prompt"
    completion: str = "completion"


@dataclass(frozen=True)
class _Row:
    file: str
    line: int
    data: Any


# ---------------------------------------------------------------- reading raw rows


def _read_jsonl(path: Path) -> Iterator[_Row | DataError]:
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield DataError(str(path), i, None, f"invalid UTF-8 at byte {e.start} of the line")
                continue
            if not text.strip():
                continue
            try:
                yield _Row(str(path), i, json.loads(text))
            except json.JSONDecodeError as e:
                yield DataError(str(path), i, None, f"malformed JSON: {e.msg} (column {e.colno})")


def _read_json(path: Path) -> Iterator[_Row | DataError]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        yield DataError(str(path), line, None, f"invalid UTF-8 at byte {e.start} of the file")
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        yield DataError(str(path), e.lineno, None, f"malformed JSON: {e.msg} (column {e.colno})")
        return
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        yield DataError(str(path), 1, None, "a JSON file must hold a list of rows (or {\"data\": [...]})")
        return
    for i, row in enumerate(data, 1):  # for a JSON array, "line" is the row number
        yield _Row(str(path), i, row)


def _read_parquet(path: Path) -> Iterator[_Row | DataError]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a broken file
        yield DataError(str(path), None, None, f"unreadable Parquet file: {e}")
        return
    for i, row in enumerate(table.to_pylist(), 1):
        yield _Row(str(path), i, row)


def _read_file(path: Path) -> Iterator[_Row | DataError]:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        yield DataError(str(path), None, None, "empty file")
        return
    readers = {".jsonl": _read_jsonl, ".json": _read_json, ".parquet": _read_parquet}
    if path.suffix not in readers:
        raise DataError(str(path), None, None, f"unsupported file type '{path.suffix}' (use {', '.join(SUFFIXES)})")
    n = 0
    for item in readers[path.suffix](path):
        n += isinstance(item, _Row)
        yield item
    if n == 0:
        yield DataError(str(path), None, None, "no rows (the file holds only blank lines)")


def _files_in(directory: Path) -> list[Path]:
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise DataError(str(directory), None, None, f"no {'/'.join(SUFFIXES)} files in directory")
    return files


# ---------------------------------------------------------------- parsing one row


def _text(row: dict, name: str, where: tuple[str, int], *, required: bool = True) -> str | None:
    if name not in row or row[name] is None:
        if required:
            raise DataError(*where, name, "missing")
        return None
    value = row[name]
    if not isinstance(value, str):
        raise DataError(*where, name, f"expected a string, got {type(value).__name__}")
    if required and not value.strip():
        raise DataError(*where, name, "empty")
    return value


def _gold(row: dict, name: str, where: tuple[str, int], *, required: bool) -> str | None:
    value = row.get(name)
    if value is None:
        if required:
            raise DataError(*where, name, "missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(*where, name, f"expected a string or number, got {type(value).__name__}")
    value = str(value)
    if not value.strip():
        raise DataError(*where, name, "empty")
    return value


def _messages(value: Any, name: str, where: tuple[str, int], *, sharegpt: bool = False) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise DataError(*where, name, "expected a non-empty list of messages")
    role_key, content_key = ("from", "value") if sharegpt else ("role", "content")
    out: list[Message] = []
    for j, m in enumerate(value):
        f = f"{name}[{j}]"
        if not isinstance(m, dict):
            raise DataError(*where, f, f"expected an object, got {type(m).__name__}")
        role, content = m.get(role_key), m.get(content_key)
        if not isinstance(role, str):
            raise DataError(*where, f"{f}.{role_key}", "missing or not a string")
        if sharegpt:
            if role.lower() not in _SHAREGPT_ROLES:
                raise DataError(*where, f"{f}.{role_key}", f"unknown speaker '{role}'")
            role = _SHAREGPT_ROLES[role.lower()]
        if not isinstance(content, str):
            raise DataError(*where, f"{f}.{content_key}", "missing or not a string")
        if not content.strip():
            raise DataError(*where, f"{f}.{content_key}", "empty")
        out.append({"role": role, "content": content})
    return out


def _split_chat(msgs: list[Message], name: str, where: tuple[str, int]) -> tuple[tuple[Message, ...], str]:
    if msgs[-1]["role"] != "assistant":
        raise DataError(*where, name, "the last message must be the assistant's trace")
    if len(msgs) < 2:
        raise DataError(*where, name, "needs at least one turn before the assistant's trace")
    return tuple(msgs[:-1]), msgs[-1]["content"]


def _prompt_and_response(row: dict, fm: FieldMap, where: tuple[str, int], *, need_response: bool):
    """Returns (prompt messages, response or None) from whichever shape the row has."""
    if fm.messages in row and row[fm.messages] is not None:
        msgs = _messages(row[fm.messages], fm.messages, where)
        if not need_response:
            return tuple(m for m in msgs if m["role"] != "assistant") or tuple(msgs), None
        return _split_chat(msgs, fm.messages, where)
    if fm.conversations in row and row[fm.conversations] is not None:
        msgs = _messages(row[fm.conversations], fm.conversations, where, sharegpt=True)
        if not need_response:
            return tuple(m for m in msgs if m["role"] != "assistant") or tuple(msgs), None
        return _split_chat(msgs, fm.conversations, where)
    if fm.question not in row and fm.prompt in row:
        p = row[fm.prompt]
        prompt = (tuple(_messages(p, fm.prompt, where)) if isinstance(p, list)
                  else ({"role": "user", "content": _text(row, fm.prompt, where)},))
        if not need_response:
            return prompt, None
        c = row.get(fm.completion)
        if isinstance(c, list):
            cm = _messages(c, fm.completion, where)
            if cm[-1]["role"] != "assistant":
                raise DataError(*where, fm.completion, "the last message must be the assistant's trace")
            return prompt, cm[-1]["content"]
        return prompt, _text(row, fm.completion, where)
    question = _text(row, fm.question, where)
    prompt = ({"role": "user", "content": question},)
    return prompt, (_text(row, fm.response, where) if need_response else None)


def _meta(row: dict, fm: FieldMap, where: tuple[str, int]) -> dict:
    meta = row.get(fm.meta)
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise DataError(*where, fm.meta, f"expected an object, got {type(meta).__name__}")
    return meta


def _id(row: dict, fm: FieldMap, where: tuple[str, int], fallback: dict) -> str:
    value = row.get(fm.id)
    if value is None:
        return content_hash(fallback)  # stable id from the content
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(*where, fm.id, f"expected a string or integer, got {type(value).__name__}")
    if not str(value).strip():
        raise DataError(*where, fm.id, "empty")
    return str(value)


def parse_sample(row: Any, fm: FieldMap, where: tuple[str, int], dataset: str) -> Sample:
    if not isinstance(row, dict):
        raise DataError(*where, None, f"expected a JSON object, got {type(row).__name__}")
    prompt, response = _prompt_and_response(row, fm, where, need_response=True)
    gold = _gold(row, fm.gold, where, required=False)
    sid = _id(row, fm, where, {"prompt": list(prompt), "response": response, "gold": gold})
    return Sample(id=sid, prompt=prompt, response=response, gold=gold, meta=_meta(row, fm, where), dataset=dataset)


def parse_eval_item(row: Any, fm: FieldMap, where: tuple[str, int]) -> EvalItem:
    if not isinstance(row, dict):
        raise DataError(*where, None, f"expected a JSON object, got {type(row).__name__}")
    prompt, _ = _prompt_and_response(row, fm, where, need_response=False)
    gold = _gold(row, fm.gold, where, required=True)
    sid = _id(row, fm, where, {"prompt": list(prompt), "gold": gold})
    return EvalItem(id=sid, prompt=prompt, gold=gold, meta=_meta(row, fm, where))


# ---------------------------------------------------------------- policy and rejects


class _Collector:
    """Applies the bad-row policy and keeps the rejects."""

    def __init__(self, policy: Policy):
        if policy not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', got {policy!r}")
        self.policy = policy
        self.rejects: list[dict] = []

    def bad(self, err: DataError, raw: Any = None) -> None:
        if self.policy == "fail":
            raise err
        self.rejects.append({"file": err.file, "line": err.line, "field": err.field, "reason": err.message,
                             "row": raw if _jsonable(raw) else repr(raw)})

    def write(self, path: str | Path | None) -> None:
        if path is None or not self.rejects:
            return
        write_jsonl(path, self.rejects)


def _jsonable(x: Any) -> bool:
    """Whether `write_jsonl` can write `x` as it is (else a reject keeps its repr)."""
    try:
        json_line(x)
        return True
    except (TypeError, ValueError):
        return False


def _rows_of(source: Any) -> Iterator[_Row | DataError]:
    if isinstance(source, (str, Path)):
        p = Path(source)
        files = _files_in(p) if p.is_dir() else [p]
        for f in files:
            yield from _read_file(f)
        return
    # a datasets.Dataset (or any sequence of dicts): "line" is the 1-based row index
    name = getattr(source, "info", None) and getattr(source.info, "dataset_name", None) or "<dataset>"
    for i, row in enumerate(source, 1):
        yield _Row(str(name), i, row)


def _default_name(source: Any) -> str:
    if isinstance(source, (str, Path)):
        p = Path(source)
        return p.name if p.is_dir() else p.stem
    return getattr(getattr(source, "info", None), "dataset_name", None) or "dataset"


def _parse_rows(source: Any, parse: Callable[[Any, tuple[str, int]], Any], fm: FieldMap, col: _Collector) -> list:
    """Parses every row of `source`, routing bad rows and duplicate ids through the policy."""
    out: list = []
    seen: dict[str, tuple[str, int]] = {}
    for item in _rows_of(source):
        if isinstance(item, DataError):
            col.bad(item)
            continue
        where = (item.file, item.line)
        try:
            parsed = parse(item.data, where)
        except DataError as e:
            col.bad(e, item.data)
            continue
        if parsed.id in seen:
            f, ln = seen[parsed.id]
            col.bad(DataError(*where, fm.id, f"duplicate id '{parsed.id}' (first at {f}:{ln})"), item.data)
            continue
        seen[parsed.id] = where
        out.append(parsed)
    return out


# ---------------------------------------------------------------- public API


def load_dataset(source: str | Path | Any, *, name: str | None = None, fields: FieldMap | None = None,
                 on_error: Policy = "fail", rejects: str | Path | None = None) -> CandidateDataset:
    """Loads one candidate dataset from a file, a directory of shards, or a `datasets.Dataset`.

    on_error="fail" raises `DataError` at the first bad row; "skip" drops bad rows, counts them in
    `n_rejected` and writes them with the reason to `rejects` (JSONL) when given.
    """
    fm = fields or FieldMap()
    name = name or _default_name(source)
    col = _Collector(on_error)
    samples = _parse_rows(source, lambda row, where: parse_sample(row, fm, where, name), fm, col)
    col.write(rejects)
    if not samples:
        raise DataError(str(source) if isinstance(source, (str, Path)) else name, None, None,
                        f"no valid rows ({len(col.rejects)} rejected)")
    return CandidateDataset(name=name, samples=samples, source=str(source), n_rejected=len(col.rejects))


def load_pool(sources: str | Path | Iterable[str | Path], *, fields: FieldMap | None = None,
              on_error: Policy = "fail", rejects_dir: str | Path | None = None) -> list[CandidateDataset]:
    """Loads several candidate datasets: each file is one dataset (named by its stem); a directory
    contributes each of its files, or each of its subdirectories (shards) when it holds no files."""
    if isinstance(sources, (str, Path)):
        sources = [sources]
    entries: list[Path] = []
    for s in map(Path, sources):
        if not s.exists():
            raise FileNotFoundError(f"{s}: no such file or directory")
        if s.is_file():
            entries.append(s)
        elif any(p.is_file() and p.suffix in SUFFIXES for p in s.iterdir()):
            entries.extend(_files_in(s))
        else:
            subdirs = sorted(p for p in s.iterdir() if p.is_dir())
            if not subdirs:
                raise DataError(str(s), None, None, f"no {'/'.join(SUFFIXES)} files in directory")
            entries.extend(subdirs)
    pool: list[CandidateDataset] = []
    names: dict[str, Path] = {}
    for e in entries:
        n = e.name if e.is_dir() else e.stem
        if n in names:
            raise DataError(str(e), None, None, f"dataset name '{n}' is also used by {names[n]}")
        names[n] = e
        rej = Path(rejects_dir) / f"{n}.rejects.jsonl" if rejects_dir else None
        pool.append(load_dataset(e, name=n, fields=fields, on_error=on_error, rejects=rej))
    return pool


def load_eval_set(source: str | Path | Any, *, fields: FieldMap | None = None, on_error: Policy = "fail",
                  rejects: str | Path | None = None) -> list[EvalItem]:
    """Loads eval questions with gold answers (question/prompt/messages + gold)."""
    fm = fields or FieldMap()
    col = _Collector(on_error)
    items = _parse_rows(source, lambda row, where: parse_eval_item(row, fm, where), fm, col)
    col.write(rejects)
    if not items:
        raise DataError(str(source), None, None, f"no valid rows ({len(col.rejects)} rejected)")
    return items


def save_dataset(ds: CandidateDataset | Iterable[Sample], path: str | Path) -> None:
    """Writes samples as JSONL in DESIGN.md §2's schema, atomically."""
    write_jsonl(path, (s.to_record() for s in ds))
