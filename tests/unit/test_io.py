"""dmc.io: atomic writes shared by every stage."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest

from dmc.io import atomic_write, atomic_write_json, read_json


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "sub" / "out.json"
    atomic_write_json(path, {"a": 1})

    def boom(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_write(path, boom)
    assert read_json(path) == {"a": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]


def test_json_is_strict_and_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_json(tmp_path / "x.json", {"nan": math.nan, "np": np.float32(0.5), "arr": np.arange(2)})
    finally:
        os.umask(old)
    assert json.loads(path.read_text()) == {"nan": None, "np": 0.5, "arr": [0, 1]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    (tmp_path / "bad.json").write_text("{\n oops")
    with pytest.raises(ValueError, match=r"bad.json:2: not valid JSON"):
        read_json(tmp_path / "bad.json")
