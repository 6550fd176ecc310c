"""Load candidate datasets and eval sets from JSONL, JSON, Parquet, directories or `datasets` objects.

Accepted row shapes (field names configurable with `FieldMap`):

- `question` / `response` / `gold` (DESIGN.md §2)
- OpenAI-style `messages`: a list of {role, content}; the last turn is the assistant's trace
- ShareGPT `conversations`: a list of {from, value} (human/gpt/system)
- `prompt` / `completion`: strings, or lists of messages (TRL's conversational shape)

Conversations (`messages`, `conversations`, message lists in `prompt` / `completion`):

- roles are system, user, assistant and tool (ShareGPT speakers map onto them); any other role
  is an error naming the message and listing the valid roles
- the scored turn is the last assistant turn, which must end the conversation: it is the
  `response`, and everything before it (system prompt, earlier user/assistant/tool turns; with
  `prompt` / `completion`, the prompt's turns then the completion's turns before its last) is
  the `prompt`; in an eval set, a conversation that ends with an assistant turn loses that turn
  (the reference trace) and the rest is the prompt, as for a trace of the same question
- the prompt must hold at least one user turn (a system prompt alone is not a question)

Reasoning (R1/QwQ-style traces): the response keeps its reasoning. A response whose content
already has a `<think>...</think>` block (or only `</think>`) is kept as it is. Reasoning given
apart, under `FieldMap.reasoning` (default `reasoning_content`) — a key of the last assistant
message, or a column beside `response` / `completion` — is joined to the answer as
`<think>\n{reasoning}\n</think>\n\n{answer}` (see `dmc.data.reasoning`); reasoning in earlier
assistant turns is dropped, as R1's chat template does. Reasoning given both apart and as a
`<think>` block in the content, or both in the message and as a column, is an error (ambiguous).
An empty or null reasoning field counts as absent.

Every bad row raises (policy "fail") or is skipped and written to a rejects file (policy "skip")
with an error naming the file, the line (1-based; the row for Parquet) and the field at fault.

Sources:

- a file (.jsonl, .json, .parquet); a UTF-8 byte-order mark at its start is accepted
- a directory of shards (its data files together are one dataset)
- a Hugging Face `datasets` `save_to_disk` directory, read with `datasets.load_from_disk`:
  a `Dataset` directory is one dataset named after the directory; a `DatasetDict` directory with
  one split is that split, named after the directory; with several splits, `load_pool` takes each
  split as a dataset named `DIR/split`, and `load_dataset` / `load_eval_set` ask for one split
  (give its directory, `DIR/split`, which loads as a dataset named `DIR/split`)
- a `datasets.Dataset` (or a one-split `DatasetDict`, or any sequence of dicts) in memory

In a pool directory every entry is one candidate dataset: a data file, a `save_to_disk`
directory, or a subdirectory of shards. Entries that are not data (README.md, .DS_Store,
config.json or any .json holding an object rather than rows, `datasets` metadata, dmc's own
`*.rejects.jsonl`, directories without data) are skipped: `load_pool` returns them in
`Pool.skipped` and logs a warning naming each one and why. A file named explicitly that is not
data is an error naming it; a directory with no data at all is an error listing what it holds.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets
import pyarrow.parquet as pq

from dmc.data.reasoning import has_think_block, join_reasoning
from dmc.data.schema import CandidateDataset, EvalItem, Message, Sample, content_hash
from dmc.io import json_line, write_jsonl

log = logging.getLogger(__name__)

Policy = Literal["fail", "skip"]
SUFFIXES = (".jsonl", ".json", ".parquet")
HF_METADATA = ("dataset_info.json", "state.json", "dataset_dict.json")  # written by save_to_disk
REJECTS_SUFFIX = ".rejects.jsonl"  # what dmc writes for refused rows: never a candidate dataset
_MAX_LISTED = 12  # entries listed in a "no data in directory" error
_DATA_KEY_FIRST = re.compile(rb'\{\s*"data"\s*:\s*\[')
ROLES = ("system", "user", "assistant", "tool")  # the roles a chat message may have
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
    reasoning: str = "reasoning_content"

    @classmethod
    def parse(cls, specs: Sequence[str]) -> FieldMap:
        """A FieldMap from CLI specs such as ["question=problem", "gold=answer"] (FIELD=COLUMN);
        fields not named keep their defaults. Raises ValueError on a malformed spec, an unknown
        field or a field given twice."""
        if isinstance(specs, str):
            specs = [specs]
        valid = [f.name for f in dataclasses.fields(cls)]
        given: dict[str, str] = {}
        kwargs: dict[str, str] = {}
        for spec in specs:
            if not isinstance(spec, str):
                raise ValueError(f"expected FIELD=COLUMN, got {spec!r}")
            field, sep, column = spec.partition("=")
            field, column = field.strip(), column.strip()
            if not sep or not field or not column:
                raise ValueError(f"bad field spec {spec!r}: expected FIELD=COLUMN, e.g. question=problem")
            if field not in valid:
                raise ValueError(f"bad field spec {spec!r}: unknown field '{field}' (valid fields: {', '.join(valid)})")
            if field in given:
                raise ValueError(f"field '{field}' given twice ({given[field]!r} and {spec!r})")
            given[field] = spec
            kwargs[field] = column
        return cls(**kwargs)


@dataclass(frozen=True)
class _Row:
    file: str
    line: int
    data: Any


# ---------------------------------------------------------------- reading raw rows


@dataclass(frozen=True)
class Skipped:
    """An entry of a directory that was not loaded, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class Pool(list):
    """`load_pool`'s result: the candidate datasets (a list) plus `skipped`, the entries of the
    given directories that were not data."""

    def __init__(self, items: Iterable[CandidateDataset] = (), skipped: Iterable[Skipped] = ()):
        super().__init__(items)
        self.skipped: list[Skipped] = list(skipped)


@dataclass
class _Unit:
    """One dataset's rows, resolved: data files, or a `datasets.Dataset` / sequence of dicts."""

    name: str
    label: str  # names the source in errors and in CandidateDataset.source
    files: list[Path] | None = None
    rows: Any = None


def _json_type(x: Any) -> str:
    if isinstance(x, dict):
        return "object"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, (int, float)):
        return "number"
    return {str: "string", type(None): "null"}.get(type(x), type(x).__name__)


def _not_rows(data: Any) -> str | None:
    """Why a parsed JSON document is not rows (None when it is a list or {"data": [...]})."""
    if isinstance(data, list) or (isinstance(data, dict) and isinstance(data.get("data"), list)):
        return None
    if isinstance(data, dict):
        keys = [str(k) for k in data]
        shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
        return f"a JSON object ({f'keys: {shown}' if keys else 'empty'}), not a list of rows"
    return f"a JSON {_json_type(data)}, not a list of rows"


def _utf16(head: bytes) -> bool:
    return head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _read_jsonl(path: Path) -> Iterator[_Row | DataError]:
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            shift = 0
            if i == 1 and raw.startswith(codecs.BOM_UTF8):
                raw, shift = raw[len(codecs.BOM_UTF8):], len(codecs.BOM_UTF8)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield DataError(str(path), i, None, f"invalid UTF-8 at byte {e.start + shift} of the line")
                continue
            if not text.strip():
                continue
            try:
                yield _Row(str(path), i, json.loads(text))
            except json.JSONDecodeError as e:
                yield DataError(str(path), i, None, f"malformed JSON: {e.msg} (column {e.colno})")


def _read_json(path: Path) -> Iterator[_Row | DataError]:
    raw = path.read_bytes()
    shift = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        text = raw[shift:].decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start + shift].count(b"\n") + 1
        yield DataError(str(path), line, None, f"invalid UTF-8 at byte {e.start + shift} of the file")
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        yield DataError(str(path), e.lineno, None, f"malformed JSON: {e.msg} (column {e.colno})")
        return
    why = _not_rows(data)
    if why:
        yield DataError(str(path), None, None, f"not a data file: {why} (expected [{{...}}, ...] or {{\"data\": [...]}})")
        return
    if isinstance(data, dict):
        data = data["data"]
    for i, row in enumerate(data, 1):  # for a JSON array, "line" is the row number
        yield _Row(str(path), i, row)


def _read_parquet(path: Path) -> Iterator[_Row | DataError]:
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
    if path.is_dir():
        raise DataError(str(path), None, None, "a directory, not a file")
    readers = {".jsonl": _read_jsonl, ".json": _read_json, ".parquet": _read_parquet}
    if path.suffix not in readers:
        what = f"'{path.suffix}' file" if path.suffix else "no file extension"
        raise DataError(str(path), None, None, f"not a data file ({what}; use {', '.join(SUFFIXES)})")
    if path.stat().st_size == 0:
        yield DataError(str(path), None, None, "empty file")
        return
    if path.suffix != ".parquet":
        with open(path, "rb") as f:
            if _utf16(f.read(2)):
                yield DataError(str(path), None, None, "UTF-16 text (byte-order mark); save the file as UTF-8")
                return
    n = 0
    for item in readers[path.suffix](path):
        n += isinstance(item, _Row)
        yield item
    if n == 0:
        yield DataError(str(path), None, None, "no rows (the file holds only blank lines)")


def _arrow_rows(ds: datasets.Dataset) -> Iterator[dict]:
    """Rows of a `datasets.Dataset` as plain Python, straight from Arrow (lists of structs stay
    lists of dicts whatever the declared features), a batch at a time."""
    for batch in ds.with_format("arrow").iter(batch_size=1024):
        yield from batch.to_pylist()


def _rows_of(unit: _Unit) -> Iterator[_Row | DataError]:
    if unit.files is not None:
        for f in unit.files:
            yield from _read_file(f)
        return
    if isinstance(unit.rows, datasets.Dataset):
        if len(unit.rows) == 0:
            yield DataError(unit.label, None, None, "no rows (the dataset is empty)")
            return
        rows: Iterable[Any] = _arrow_rows(unit.rows)
    else:
        rows = unit.rows
    for i, row in enumerate(rows, 1):  # "line" is the 1-based row index
        yield _Row(unit.label, i, row)


# ---------------------------------------------------------------- resolving sources


def _hf_kind(path: Path) -> str | None:
    """"dict" / "dataset" for a `save_to_disk` directory of a DatasetDict / Dataset, else None."""
    if (path / "dataset_dict.json").is_file():
        return "dict"
    if (path / "state.json").is_file() and (path / "dataset_info.json").is_file():
        return "dataset"
    return None


def _hf_units(path: Path) -> list[_Unit]:
    """The datasets of a `save_to_disk` directory: a Dataset is one, named after the directory
    (DIR/split when the directory is a split of a DatasetDict); a DatasetDict gives its one split
    named after the directory, or each of several splits named DIR/split."""
    try:
        obj = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises several types for a broken or partial directory
        raise DataError(str(path), None, None, f"unreadable datasets save_to_disk directory: {e}") from None
    if isinstance(obj, datasets.DatasetDict):
        splits = list(obj)
        if not splits:
            raise DataError(str(path), None, None, "a DatasetDict with no splits")
        if len(splits) == 1:
            return [_Unit(path.name, str(path / splits[0]), rows=obj[splits[0]])]
        return [_Unit(f"{path.name}/{s}", str(path / s), rows=obj[s]) for s in splits]
    split_of_dict = (path.parent / "dataset_dict.json").is_file()
    return [_Unit(f"{path.parent.name}/{path.name}" if split_of_dict else path.name, str(path), rows=obj)]


def _skip_reason(path: Path) -> str | None:
    """Why a file found in a directory is not data (None when it is, or may be, data: a data
    file that turns out broken is an error, not a skip)."""
    if path.name.startswith("."):
        return "hidden file"
    if path.name in HF_METADATA:
        return "datasets save_to_disk metadata (outside a save_to_disk directory)"
    if path.name.endswith(REJECTS_SUFFIX):
        return "a rejects file (rows refused by an earlier load)"
    if path.suffix not in SUFFIXES:
        return f"not a data file ({f'{path.suffix!r} file' if path.suffix else 'no extension'}; data files are {', '.join(SUFFIXES)})"
    if path.suffix != ".json":
        return None
    with open(path, "rb") as f:
        head = f.read(4096)
    head = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if not head or head[:1] == b"[" or _DATA_KEY_FIRST.match(head) or _utf16(head):
        return None
    try:
        data = json.loads(path.read_bytes().removeprefix(codecs.BOM_UTF8).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None  # let the reader report where it breaks
    return _not_rows(data)


def _data_files(directory: Path) -> tuple[list[Path], list[Skipped]]:
    """The data files directly in a directory of shards, and what else it holds."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for p in sorted(directory.iterdir()):
        if p.is_dir():
            why = "hidden directory" if p.name.startswith(".") else "a subdirectory inside a directory of shards"
            skipped.append(Skipped(str(p), why))
        elif not p.is_file():
            skipped.append(Skipped(str(p), "not a regular file"))
        elif why := _skip_reason(p):
            skipped.append(Skipped(str(p), why))
        else:
            files.append(p)
    return files, skipped


def _no_data(directory: Path, found: list[Skipped]) -> DataError:
    if not found:
        return DataError(str(directory), None, None, "no data in directory (it is empty)")
    listed = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in found[:_MAX_LISTED])
    more = f"; and {len(found) - _MAX_LISTED} more" if len(found) > _MAX_LISTED else ""
    return DataError(str(directory), None, None,
                     f"no data in directory (no {'/'.join(SUFFIXES)} rows, save_to_disk directories or "
                     f"directories of shards); found {len(found)} entries: {listed}{more}")


def _pool_dir(directory: Path, skipped: list[Skipped]) -> list[_Unit]:
    """Each entry of a pool directory that is data, as one dataset; the rest goes to `skipped`."""
    units: list[_Unit] = []
    here: list[Skipped] = []
    for p in sorted(directory.iterdir()):
        if p.is_dir():
            if p.name.startswith("."):
                here.append(Skipped(str(p), "hidden directory"))
            elif _hf_kind(p):
                units.extend(_hf_units(p))
            else:
                files, inside = _data_files(p)
                if files:
                    units.append(_Unit(p.name, str(p), files=files))
                    skipped.extend(inside)
                else:
                    here.append(Skipped(str(p), "a directory with no data files"))
        elif not p.is_file():
            here.append(Skipped(str(p), "not a regular file"))
        elif why := _skip_reason(p):
            here.append(Skipped(str(p), why))
        else:
            units.append(_Unit(p.stem, str(p), files=[p]))
    if not units:
        raise _no_data(directory, here)
    skipped.extend(here)
    return units


def _one_split(units: list[_Unit], path: Path) -> _Unit:
    if len(units) > 1:
        splits = [u.label.rsplit("/", 1)[-1] for u in units]
        raise DataError(str(path), None, None, f"a DatasetDict with splits {', '.join(splits)}: give one split's "
                        f"directory, e.g. {path / splits[0]}")
    return units[0]


def _unit(source: Any, name: str | None, skipped: list[Skipped]) -> _Unit:
    """Resolves what `load_dataset` / `load_eval_set` were given to one dataset's rows."""
    if isinstance(source, (str, Path)):
        p = Path(source)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or directory")
        if p.is_dir() and _hf_kind(p):
            u = _one_split(_hf_units(p), p)
        elif p.is_dir():
            files, found = _data_files(p)
            if not files:
                raise _no_data(p, found)
            skipped.extend(found)
            u = _Unit(p.name, str(source), files=files)
        else:
            u = _Unit(p.stem, str(source), files=[p])
        if name:
            u.name = name
        return u
    if isinstance(source, datasets.DatasetDict):
        splits = list(source)
        if len(splits) != 1:
            raise DataError(name or "DatasetDict", None, None,
                            f"a DatasetDict with splits {', '.join(splits)}: pass one split, e.g. dd[{splits[0]!r}]"
                            if splits else "a DatasetDict with no splits")
        source = source[splits[0]]
    info_name = getattr(getattr(source, "info", None), "dataset_name", None)
    return _Unit(name or info_name or "dataset", str(info_name or "<dataset>"), rows=source)


def _log_skipped(skipped: list[Skipped]) -> None:
    for s in skipped:
        log.warning("skipped %s: %s", s.path, s.reason)


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
    return _chat(value, name, where, sharegpt=sharegpt)[0]


def _chat(value: Any, name: str, where: tuple[str, int], *, sharegpt: bool = False) -> tuple[list[Message], list[dict]]:
    """The messages of a chat field, checked, and the raw message objects they came from."""
    role_key, content_key = ("from", "value") if sharegpt else ("role", "content")
    value = _transposed(value, role_key, content_key)
    if not isinstance(value, list) or not value:
        raise DataError(*where, name, "expected a non-empty list of messages")
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
        elif role not in ROLES:
            hint = " (roles are lowercase)" if role.strip().lower() in ROLES else ""
            raise DataError(*where, f"{f}.{role_key}", f"unknown role '{role}'{hint}; valid roles: {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise DataError(*where, f"{f}.{content_key}", "missing or not a string")
        if not content.strip():
            raise DataError(*where, f"{f}.{content_key}", "empty")
        out.append({"role": role, "content": content})
    return out, value


def _transposed(value: Any, role_key: str, content_key: str) -> Any:
    """A `datasets` Sequence-of-struct column arrives as one dict of equal-length lists
    ({"role": [...], "content": [...]}); turn it back into a list of messages."""
    if not (isinstance(value, dict) and isinstance(value.get(role_key), list)
            and isinstance(value.get(content_key), list)):
        return value
    cols = {k: v for k, v in value.items() if isinstance(v, list)}
    if len({len(v) for v in cols.values()}) != 1:
        return value
    return [dict(zip(cols, vals)) for vals in zip(*cols.values())]


def _need_user(prompt: Sequence[Message], name: str, where: tuple[str, int], before: str) -> None:
    """Refuses a prompt without a user turn (a system prompt is not a question)."""
    if not any(m["role"] == "user" for m in prompt):
        roles = ", ".join(m["role"] for m in prompt)
        found = f"only {roles}" if roles else "nothing"
        raise DataError(*where, name, f"no user turn {before} (found {found}); the prompt needs a user's question")


def _reasoning(value: Any, name: str, where: tuple[str, int]) -> str | None:
    """A reasoning field's text; None when it is absent, null or blank."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise DataError(*where, name, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        return None
    if has_think_block(value):
        raise DataError(*where, name, "has a <think> tag: give the reasoning without tags (it is wrapped in "
                        "<think>...</think> when loaded), or the whole trace in the content")
    return value


def _with_reasoning(answer: str, answer_name: str, given: Sequence[tuple[str, Any]], where: tuple[str, int]) -> str:
    """The response: `answer` as it is, or joined with the reasoning found under `given`
    ((field name, value) pairs) in the R1 form."""
    found = [(name, r) for name, value in given if (r := _reasoning(value, name, where)) is not None]
    if not found:
        return answer
    if len(found) > 1:
        raise DataError(*where, found[0][0], f"ambiguous: reasoning is given both here and in '{found[1][0]}'; keep one")
    name, reasoning = found[0]
    if has_think_block(answer):
        raise DataError(*where, name, f"ambiguous: reasoning is given here and '{answer_name}' already has a "
                        "<think> block; keep one")
    return join_reasoning(reasoning, answer)


def _split_chat(value: Any, name: str, where: tuple[str, int], fm: FieldMap, *, sharegpt: bool = False,
                column: Any = None) -> tuple[tuple[Message, ...], str]:
    """(prompt, response) of a conversation: the prompt is every turn before the last, which must
    be the assistant's trace; the trace takes the reasoning of that message or of the row's column."""
    msgs, raw = _chat(value, name, where, sharegpt=sharegpt)
    if msgs[-1]["role"] != "assistant":
        raise DataError(*where, name, "the last message must be the assistant's trace")
    prompt = tuple(msgs[:-1])
    _need_user(prompt, name, where, "before the assistant's trace")
    last = f"{name}[{len(msgs) - 1}]"
    content = f"{last}.{'value' if sharegpt else 'content'}"
    given = [(f"{last}.{fm.reasoning}", raw[-1].get(fm.reasoning)), (fm.reasoning, column)]
    return prompt, _with_reasoning(msgs[-1]["content"], content, given, where)


def _eval_prompt(value: Any, name: str, where: tuple[str, int], *, sharegpt: bool = False) -> tuple[Message, ...]:
    """An eval question's prompt from a conversation: the turns before its last assistant turn
    when it ends with one (the reference trace), else every turn."""
    msgs = _messages(value, name, where, sharegpt=sharegpt)
    prompt = tuple(msgs[:-1] if msgs[-1]["role"] == "assistant" else msgs)
    _need_user(prompt, name, where, "in the conversation" if prompt == tuple(msgs) else "before the last assistant turn")
    return prompt


def _prompt_and_response(row: dict, fm: FieldMap, where: tuple[str, int], *, need_response: bool):
    """Returns (prompt messages, response or None) from whichever shape the row has."""
    column = row.get(fm.reasoning) if need_response else None
    for name, sharegpt in ((fm.messages, False), (fm.conversations, True)):
        if name in row and row[name] is not None:
            if not need_response:
                return _eval_prompt(row[name], name, where, sharegpt=sharegpt), None
            return _split_chat(row[name], name, where, fm, sharegpt=sharegpt, column=column)
    if fm.question not in row and fm.prompt in row:
        p = row[fm.prompt]
        if isinstance(p, list):
            prompt = tuple(_messages(p, fm.prompt, where))
            _need_user(prompt, fm.prompt, where, "in the prompt")
        else:
            prompt = ({"role": "user", "content": _text(row, fm.prompt, where)},)
        if not need_response:
            return prompt, None
        c = row.get(fm.completion)
        if isinstance(c, list):
            cm, raw = _chat(c, fm.completion, where)
            if cm[-1]["role"] != "assistant":
                raise DataError(*where, fm.completion, "the last message must be the assistant's trace")
            last = f"{fm.completion}[{len(cm) - 1}]"
            given = [(f"{last}.{fm.reasoning}", raw[-1].get(fm.reasoning)), (fm.reasoning, column)]
            # turns of the completion before its last (tool calls and results) lead up to the trace
            return (*prompt, *cm[:-1]), _with_reasoning(cm[-1]["content"], f"{last}.content", given, where)
        return prompt, _with_reasoning(_text(row, fm.completion, where), fm.completion, [(fm.reasoning, column)], where)
    question = _text(row, fm.question, where)
    prompt = ({"role": "user", "content": question},)
    if not need_response:
        return prompt, None
    return prompt, _with_reasoning(_text(row, fm.response, where), fm.response, [(fm.reasoning, column)], where)


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


def _parse_rows(unit: _Unit, parse: Callable[[Any, tuple[str, int]], Any], fm: FieldMap, col: _Collector) -> list:
    """Parses every row of `unit`, routing bad rows and duplicate ids through the policy."""
    out: list = []
    seen: dict[str, tuple[str, int]] = {}
    for item in _rows_of(unit):
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


def _load_unit(unit: _Unit, fm: FieldMap, on_error: Policy, rejects: str | Path | None) -> CandidateDataset:
    col = _Collector(on_error)
    samples = _parse_rows(unit, lambda row, where: parse_sample(row, fm, where, unit.name), fm, col)
    col.write(rejects)
    if not samples:
        raise DataError(unit.label, None, None, f"no valid rows ({len(col.rejects)} rejected)")
    return CandidateDataset(name=unit.name, samples=samples, source=unit.label, n_rejected=len(col.rejects))


def load_dataset(source: str | Path | Any, *, name: str | None = None, fields: FieldMap | None = None,
                 on_error: Policy = "fail", rejects: str | Path | None = None) -> CandidateDataset:
    """Loads one candidate dataset from a file, a directory of shards, a `save_to_disk` directory
    (a Dataset, or one split of a DatasetDict) or a `datasets.Dataset`.

    on_error="fail" raises `DataError` at the first bad row; "skip" drops bad rows, counts them in
    `n_rejected` and writes them with the reason to `rejects` (JSONL) when given. Files in a
    directory of shards that are not data are skipped with a logged warning.
    """
    skipped: list[Skipped] = []
    unit = _unit(source, name, skipped)
    _log_skipped(skipped)
    return _load_unit(unit, fields or FieldMap(), on_error, rejects)


def load_pool(sources: str | Path | Iterable[str | Path], *, fields: FieldMap | None = None,
              on_error: Policy = "fail", rejects_dir: str | Path | None = None) -> Pool:
    """Loads several candidate datasets. A file is one dataset (named by its stem); a
    `save_to_disk` directory is one dataset per split (see the module's docstring); any other
    directory contributes each entry that is data: each data file, each `save_to_disk`
    subdirectory and each subdirectory of shards (named after it). Entries that are not data are
    skipped: the result (a list) lists them in `.skipped`, and each is logged as a warning.
    A directory with no data raises `DataError` listing what it holds."""
    if isinstance(sources, (str, Path)):
        sources = [sources]
    units: list[_Unit] = []
    skipped: list[Skipped] = []
    for s in map(Path, sources):
        if not s.exists():
            raise FileNotFoundError(f"{s}: no such file or directory")
        if not s.is_dir():
            units.append(_Unit(s.stem, str(s), files=[s]))
        elif _hf_kind(s):
            units.extend(_hf_units(s))
        else:
            units.extend(_pool_dir(s, skipped))
    _log_skipped(skipped)
    fm = fields or FieldMap()
    pool = Pool(skipped=skipped)
    names: dict[str, str] = {}
    for u in units:
        if u.name in names:
            raise DataError(u.label, None, None, f"dataset name '{u.name}' is also used by {names[u.name]}")
        names[u.name] = u.label
        rej = Path(rejects_dir) / f"{u.name}{REJECTS_SUFFIX}" if rejects_dir else None
        pool.append(_load_unit(u, fm, on_error, rej))
    return pool


def load_eval_set(source: str | Path | Any, *, fields: FieldMap | None = None, on_error: Policy = "fail",
                  rejects: str | Path | None = None) -> list[EvalItem]:
    """Loads eval questions with gold answers (question/prompt/messages + gold), from the same
    sources as `load_dataset`."""
    fm = fields or FieldMap()
    skipped: list[Skipped] = []
    unit = _unit(source, None, skipped)
    _log_skipped(skipped)
    col = _Collector(on_error)
    items = _parse_rows(unit, lambda row, where: parse_eval_item(row, fm, where), fm, col)
    col.write(rejects)
    if not items:
        raise DataError(unit.label, None, None, f"no valid rows ({len(col.rejects)} rejected)")
    return items


def save_dataset(ds: CandidateDataset | Iterable[Sample], path: str | Path) -> None:
    """Writes samples as JSONL in DESIGN.md §2's schema, atomically."""
    write_jsonl(path, (s.to_record() for s in ds))
