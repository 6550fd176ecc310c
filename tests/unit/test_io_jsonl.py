"""dmc.io.write_jsonl: the one whole-file JSONL writer (atomic, ordinary permissions, strict JSON)."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from dmc.data import save_dataset
from dmc.data import write_jsonl as data_write_jsonl
from dmc.data.schema import Sample
from dmc.io import json_line, write_jsonl
from dmc.training.io import RunLog


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    """A fixed, ordinary umask (so 0600 and the expected mode differ), restored afterwards."""
    old = os.umask(0o022)
    try:
        yield 0o022
    finally:
        os.umask(old)


def _leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_permissions_follow_the_umask_not_0600(tmp_path, umask_022):
    plain = tmp_path / "plain.txt"
    with open(plain, "w", encoding="utf-8") as f:
        f.write("x\n")
    out = write_jsonl(tmp_path / "rows.jsonl", [{"a": 1}])
    assert out == tmp_path / "rows.jsonl"
    assert _mode(out) == _mode(plain) == 0o644
    # the re-export and the callers built on it get the same mode
    data_write_jsonl(tmp_path / "via_data.jsonl", [{"a": 1}])
    save_dataset([Sample(id="1", prompt=({"role": "user", "content": "q"},), response="r", gold="g", dataset="d")],
                 tmp_path / "saved.jsonl")
    assert _mode(tmp_path / "via_data.jsonl") == 0o644 and _mode(tmp_path / "saved.jsonl") == 0o644
    assert data_write_jsonl is write_jsonl


def test_permissions_under_another_umask(tmp_path):
    old = os.umask(0o077)
    try:
        with open(tmp_path / "plain", "w") as f:
            f.write("")
        write_jsonl(tmp_path / "rows.jsonl", [{}])
    finally:
        os.umask(old)
    assert _mode(tmp_path / "rows.jsonl") == _mode(tmp_path / "plain") == 0o600


def test_round_trip_nan_null_unicode_and_numpy(tmp_path):
    rows = [
        {"text": "naïve — 日本語 ✓", "x": 1.5, "nan": float("nan"), "inf": float("inf"), "none": None},
        {"np_int": np.int64(7), "np_float": np.float32(0.25), "np_nan": np.float64("nan"),
         "arr": np.array([1, 2]), "path": Path("a/b"), "nested": {"k": [float("-inf"), 2]}, 3: "int key"},
        {},
    ]
    path = write_jsonl(tmp_path / "sub" / "dir" / "rows.jsonl", iter(rows))  # parents created; any iterable
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    assert "日本語" in text and "\\u" not in text  # unicode kept, not escaped
    assert "NaN" not in text and "Infinity" not in text
    lines = text.split("\n")
    assert len(lines) == 4 and lines[-1] == ""  # one row per line, trailing newline
    back = [json.loads(line) for line in lines[:-1]]
    assert back[0] == {"text": "naïve — 日本語 ✓", "x": 1.5, "nan": None, "inf": None, "none": None}
    assert back[1] == {"np_int": 7, "np_float": 0.25, "np_nan": None, "arr": [1, 2], "path": "a/b",
                       "nested": {"k": [None, 2]}, "3": "int key"}
    assert back[2] == {}
    # strict JSON: a parser that rejects NaN/Infinity reads every line
    for line in lines[:-1]:
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}"))
    assert json_line({"v": math.nan}) == '{"v": null}'


def test_empty_rows_write_an_empty_file(tmp_path):
    assert write_jsonl(tmp_path / "e.jsonl", []).read_bytes() == b""


@pytest.mark.parametrize("bad", [{"obj": object()}, {"s": {1, 2}}, ["not", "a", "dict"]])
def test_failing_row_leaves_no_partial_file(tmp_path, bad):
    target = tmp_path / "new.jsonl"
    with pytest.raises(TypeError):
        write_jsonl(target, [{"ok": 1}, {"ok": 2}, bad, {"ok": 3}])
    assert not target.exists()
    assert _leftovers(tmp_path, set()) == []  # no temporary file left behind


def test_failing_row_keeps_existing_file_intact(tmp_path):
    target = tmp_path / "rows.jsonl"
    write_jsonl(target, [{"v": 1}, {"v": 2}])
    before = target.read_bytes()
    with pytest.raises(TypeError):
        write_jsonl(target, ({"v": i} if i < 5 else {"v": object()} for i in range(10)))
    assert target.read_bytes() == before == b'{"v": 1}\n{"v": 2}\n'
    assert _leftovers(tmp_path, {"rows.jsonl"}) == []


def test_run_log_appends_and_truncates_with_the_same_line_format(tmp_path, umask_022):
    log = RunLog(tmp_path / "log.jsonl")
    for step, loss in ((1, 2.0), (2, float("nan")), (3, 0.5)):
        log.write({"event": "train", "step": step, "loss": loss, "note": "é"})
    lines = (tmp_path / "log.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[1] == json_line({"event": "train", "step": 2, "loss": None, "note": "é"})
    with pytest.raises(TypeError):
        log.write({"step": 4, "bad": object()})  # serialized before the file is opened: nothing appended
    assert len(log.read()) == 3
    assert log.truncate_after(2) == 1
    assert [e["step"] for e in log.read()] == [1, 2] and log.read()[1]["loss"] is None
    assert _mode(tmp_path / "log.jsonl") == 0o644  # the rewrite goes through write_jsonl
