"""Pool directories as users have them: `save_to_disk` directories, stray non-data files, CLI field
maps and byte-order marks."""

import json
import logging
from pathlib import Path

import datasets
import pytest

from dmc.data import DataError, FieldMap, Pool, Skipped, load_dataset, load_eval_set, load_pool
from dmc.grading.api import grade_many

ROW = {"id": "a", "question": "Compute 2 + 3.", "response": "2 + 3 = 5\nThe answer is 5.", "gold": "5"}


def rows(prefix: str, n: int) -> list[dict]:
    return [{**ROW, "id": f"{prefix}{i}", "question": f"Q{prefix}{i}"} for i in range(n)]


def write_jsonl(path: Path, items: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in items))
    return path


def save_hf(path: Path, data) -> Path:
    """`data`: a list of rows (Dataset) or {split: rows} (DatasetDict), written with save_to_disk."""
    if isinstance(data, dict):
        datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in data.items()}).save_to_disk(str(path))
    else:
        datasets.Dataset.from_list(data).save_to_disk(str(path))
    return path


def rel(e: pytest.ExceptionInfo, root: Path) -> str:
    return str(e.value).replace(str(root) + "/", "")


# ---------------------------------------------------------------- save_to_disk directories


def test_save_to_disk_dataset_is_one_dataset(tmp_path):
    d = save_hf(tmp_path / "teacherA", rows("a", 3))
    assert sorted(p.name for p in d.iterdir()) == ["data-00000-of-00001.arrow", "dataset_info.json", "state.json"]
    ds = load_dataset(d)
    assert (ds.name, len(ds), [s.id for s in ds]) == ("teacherA", 3, ["a0", "a1", "a2"])
    assert ds.samples[0].question == "Qa0" and ds.samples[0].gold == "5" and ds.source == str(d)
    pool = load_pool(d)
    assert [(p.name, len(p)) for p in pool] == [("teacherA", 3)] and pool.skipped == []


def test_save_to_disk_bad_row_names_directory_and_row(tmp_path):
    d = save_hf(tmp_path / "t", [ROW, {**ROW, "id": "b", "response": " "}])
    with pytest.raises(DataError) as e:
        load_dataset(d)
    assert rel(e, tmp_path) == "t:2: field 'response': empty"
    ds = load_dataset(d, on_error="skip")
    assert [s.id for s in ds] == ["a"] and ds.n_rejected == 1


def test_datasetdict_one_split_is_named_after_the_directory(tmp_path):
    d = save_hf(tmp_path / "teacherB", {"train": rows("b", 2)})
    assert [(p.name, len(p)) for p in load_pool(d)] == [("teacherB", 2)]
    ds = load_dataset(d)
    assert (ds.name, len(ds), ds.source) == ("teacherB", 2, str(d / "train"))


def test_datasetdict_several_splits(tmp_path):
    d = save_hf(tmp_path / "teacherC", {"train": rows("t", 3), "test": rows("s", 1)})
    # load_pool: each split is a candidate dataset named DIR/split, in the DatasetDict's order
    pool = load_pool(d)
    assert [(p.name, len(p)) for p in pool] == [("teacherC/train", 3), ("teacherC/test", 1)]
    assert pool[1].samples[0].dataset == "teacherC/test"
    # load_dataset / load_eval_set need one split: the error names the directory and the splits
    with pytest.raises(DataError) as e:
        load_dataset(d)
    assert rel(e, tmp_path) == "teacherC: a DatasetDict with splits train, test: give one split's directory, " \
        "e.g. teacherC/train"
    with pytest.raises(DataError, match="a DatasetDict with splits train, test"):
        load_eval_set(d)
    # ... given as DIR/split, which is named DIR/split
    ds = load_dataset(d / "test")
    assert (ds.name, [s.id for s in ds]) == ("teacherC/test", ["s0"])
    assert [p.name for p in load_pool([d / "train", d / "test"])] == ["teacherC/train", "teacherC/test"]


def test_datasetdict_split_rejects_go_under_the_directory_name(tmp_path):
    d = save_hf(tmp_path / "T", {"train": [ROW, {**ROW, "id": "b", "question": ""}], "test": rows("s", 1)})
    pool = load_pool(d, on_error="skip", rejects_dir=tmp_path / "rej")
    assert [(p.name, len(p), p.n_rejected) for p in pool] == [("T/train", 1, 1), ("T/test", 1, 0)]
    rejected = [json.loads(l) for l in (tmp_path / "rej" / "T" / "train.rejects.jsonl").read_text().splitlines()]
    assert [(r["file"], r["line"], r["field"], r["reason"]) for r in rejected] == [(str(d / "train"), 2, "question", "empty")]


def test_eval_set_from_save_to_disk(tmp_path):
    d = save_hf(tmp_path / "ev", {"test": [{"id": "e1", "question": "Q", "gold": "3"},
                                          {"id": "e2", "question": "Q2", "gold": "4"}]})
    assert [(i.id, i.gold) for i in load_eval_set(d)] == [("e1", "3"), ("e2", "4")]


def test_sequence_feature_messages_load_as_a_list(tmp_path):
    """A `Sequence({role, content})` column comes back as a dict of lists; it is read as messages."""
    features = datasets.Features({"messages": datasets.Sequence({"role": datasets.Value("string"),
                                                                 "content": datasets.Value("string")}),
                                  "gold": datasets.Value("string")})
    hf = datasets.Dataset.from_dict({"messages": [{"role": ["user", "assistant"], "content": ["Q1", "A1"]}],
                                     "gold": ["1"]}, features=features)
    assert isinstance(hf[0]["messages"], dict)
    hf.save_to_disk(str(tmp_path / "seq"))
    for src in (hf, tmp_path / "seq"):
        s = load_dataset(src, name="seq").samples[0]
        assert (s.prompt, s.response, s.gold) == (({"role": "user", "content": "Q1"},), "A1", "1")


def test_in_memory_datasetdict(tmp_path):
    one = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows("m", 2))})
    assert [s.id for s in load_dataset(one, name="m")] == ["m0", "m1"]
    two = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows("m", 2)),
                                "test": datasets.Dataset.from_list(rows("n", 1))})
    with pytest.raises(DataError, match=r"m: a DatasetDict with splits train, test: pass one split, e.g. dd\['train'\]"):
        load_dataset(two, name="m")
    assert [s.id for s in load_dataset(two["test"], name="m")] == ["n0"]


def test_in_memory_dataset_after_select_keeps_the_selected_rows():
    hf = datasets.Dataset.from_list(rows("r", 5)).select([4, 1])
    assert [s.id for s in load_dataset(hf, name="r")] == ["r4", "r1"]


def test_broken_save_to_disk_directory_names_it(tmp_path):
    d = save_hf(tmp_path / "broken", rows("x", 1))
    next(d.glob("*.arrow")).unlink()
    with pytest.raises(DataError) as e:
        load_pool(tmp_path)
    assert rel(e, tmp_path).startswith("broken: unreadable datasets save_to_disk directory:")


# ---------------------------------------------------------------- pool directories with stray files


def make_pool(root: Path) -> Path:
    """A pool directory as users have it: data next to configs, notes and junk."""
    write_jsonl(root / "a.jsonl", rows("a", 2))
    (root / "b.json").write_text(json.dumps(rows("b", 3)))
    (root / "c.json").write_text(json.dumps({"data": rows("c", 1)}))
    write_jsonl(root / "shards" / "part-0.jsonl", rows("s", 2))
    write_jsonl(root / "shards" / "part-1.jsonl", rows("t", 1))
    (root / "shards" / "README.md").write_text("shards of teacher S\n")
    save_hf(root / "hfteacher", rows("h", 4))
    (root / "config.json").write_text(json.dumps({"model": "x", "temperature": 0.7}))
    (root / "dataset_info.json").write_text(json.dumps({"description": "", "features": {}}))
    (root / "README.md").write_text("# my pool\n")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "stats.json").write_text("42")
    write_jsonl(root / "a.rejects.jsonl", [{"file": "a.jsonl", "line": 3, "field": "question", "reason": "missing"}])
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("more teachers\n")
    (root / ".cache").mkdir()
    return root


def test_pool_directory_skips_non_data_with_reasons(tmp_path, caplog):
    root = make_pool(tmp_path / "pool")
    with caplog.at_level(logging.WARNING, logger="dmc.data.loading"):
        pool = load_pool(root)
    assert isinstance(pool, Pool) and isinstance(pool, list)
    assert [(d.name, len(d)) for d in pool] == [("a", 2), ("b", 3), ("c", 1), ("hfteacher", 4), ("shards", 3)]
    skipped = {str(Path(s.path).relative_to(root)): s.reason for s in pool.skipped}
    assert skipped == {
        "shards/README.md": "not a data file ('.md' file; data files are .jsonl, .json, .parquet)",
        ".DS_Store": "hidden file",
        ".cache": "hidden directory",
        "README.md": "not a data file ('.md' file; data files are .jsonl, .json, .parquet)",
        "a.rejects.jsonl": "a rejects file (rows refused by an earlier load)",
        "config.json": "a JSON object (keys: model, temperature), not a list of rows",
        "dataset_info.json": "datasets save_to_disk metadata (outside a save_to_disk directory)",
        "notes": "a directory with no data files",
        "stats.json": "a JSON number, not a list of rows",
    }
    assert all(isinstance(s, Skipped) for s in pool.skipped)
    # one warning per skipped entry, naming it and why
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 9 and f"skipped {root / 'config.json'}: a JSON object (keys: model, temperature), " \
        "not a list of rows" in warned
    assert not any("must hold a list" in w for w in warned)


def test_pool_of_only_save_to_disk_subdirectories(tmp_path):
    save_hf(tmp_path / "pool" / "x", rows("x", 2))
    save_hf(tmp_path / "pool" / "y", {"train": rows("y", 1)})
    save_hf(tmp_path / "pool" / "z", {"train": rows("z", 1), "validation": rows("w", 2)})
    pool = load_pool(tmp_path / "pool")
    assert [(d.name, len(d)) for d in pool] == [("x", 2), ("y", 1), ("z/train", 1), ("z/validation", 2)]


def test_explicit_non_data_file_is_an_error_naming_it(tmp_path):
    root = make_pool(tmp_path / "pool")
    with pytest.raises(DataError) as e:
        load_pool([root / "a.jsonl", root / "config.json"])
    assert rel(e, root) == ("config.json: not a data file: a JSON object (keys: model, temperature), not a list "
                            "of rows (expected [{...}, ...] or {\"data\": [...]})")
    with pytest.raises(DataError) as e:
        load_dataset(root / "README.md")
    assert rel(e, root) == "README.md: not a data file ('.md' file; use .jsonl, .json, .parquet)"
    with pytest.raises(DataError, match=r"\.DS_Store: not a data file \(no file extension"):
        load_pool([root / ".DS_Store"])
    with pytest.raises(DataError, match=r"stats.json: not a data file: a JSON number, not a list of rows"):
        load_eval_set(root / "stats.json")


def test_directory_without_data_lists_what_it_found(tmp_path):
    d = tmp_path / "empty-ish"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "README.md").write_text("hi")
    (d / "sub").mkdir()
    with pytest.raises(DataError) as e:
        load_pool(d)
    assert rel(e, tmp_path) == (
        "empty-ish: no data in directory (no .jsonl/.json/.parquet rows, save_to_disk directories or directories "
        "of shards); found 3 entries: README.md: not a data file ('.md' file; data files are .jsonl, .json, "
        ".parquet); config.json: a JSON object (empty), not a list of rows; sub: a directory with no data files")
    with pytest.raises(DataError, match=r"empty-ish: no data in directory .*found 3 entries"):
        load_dataset(d)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError) as e:
        load_pool(tmp_path / "nothing")
    assert rel(e, tmp_path) == "nothing: no data in directory (it is empty)"


def test_directory_of_shards_skips_non_data(tmp_path, caplog):
    d = tmp_path / "teacher"
    write_jsonl(d / "part-0.jsonl", rows("p", 2))
    (d / "dataset_info.json").write_text("{}")
    (d / "_SUCCESS").write_text("")
    with caplog.at_level(logging.WARNING, logger="dmc.data.loading"):
        ds = load_dataset(d)
    assert (ds.name, len(ds)) == ("teacher", 2)
    assert sorted(r.getMessage().replace(str(d) + "/", "") for r in caplog.records) == [
        "skipped _SUCCESS: not a data file (no extension; data files are .jsonl, .json, .parquet)",
        "skipped dataset_info.json: datasets save_to_disk metadata (outside a save_to_disk directory)",
    ]


def test_broken_data_file_in_pool_is_still_an_error(tmp_path):
    """A file that looks like data but is broken is reported, not skipped."""
    write_jsonl(tmp_path / "a.jsonl", [ROW])
    (tmp_path / "b.json").write_text('{"data": [1, 2')
    with pytest.raises(DataError) as e:
        load_pool(tmp_path)
    assert rel(e, tmp_path) == "b.json:1: malformed JSON: Expecting ',' delimiter (column 15)"
    (tmp_path / "b.json").write_text('{"model": ')
    with pytest.raises(DataError, match=r"b.json:1: malformed JSON"):
        load_pool(tmp_path)


# ---------------------------------------------------------------- FieldMap.parse


def test_fieldmap_parse():
    fm = FieldMap.parse(["question=problem", "response = solution", "gold=answer"])
    assert fm == FieldMap(question="problem", response="solution", gold="answer")
    assert fm.messages == "messages" and fm.id == "id"
    assert FieldMap.parse([]) == FieldMap()
    assert FieldMap.parse("id=uid") == FieldMap(id="uid")


@pytest.mark.parametrize("specs,message", [
    (["question"], "bad field spec 'question': expected FIELD=COLUMN, e.g. question=problem"),
    (["question="], "bad field spec 'question=': expected FIELD=COLUMN, e.g. question=problem"),
    (["=problem"], "bad field spec '=problem': expected FIELD=COLUMN, e.g. question=problem"),
    (["qustion=problem"], "bad field spec 'qustion=problem': unknown field 'qustion' (valid fields: id, question, "
                          "response, gold, meta, messages, conversations, prompt, completion, reasoning)"),
    (["gold=answer", "question=q", "gold=final"], "field 'gold' given twice ('gold=answer' and 'gold=final')"),
])
def test_fieldmap_parse_errors(specs, message):
    with pytest.raises(ValueError) as e:
        FieldMap.parse(specs)
    assert str(e.value) == message


def test_fieldmap_parse_loads_and_scores_renamed_columns(tmp_path):
    p = write_jsonl(tmp_path / "renamed.jsonl", [
        {"problem": "What is 2 + 3?", "solution": "2 + 3 = 5. The answer is 5.", "answer": "5"},
        {"problem": "What is 6 * 7?", "solution": "6 * 7 = 42, so \\boxed{42}", "answer": 42},
        {"problem": "What is 10 / 4?", "solution": "10 / 4 = 2. The answer is 2.", "answer": "2.5"},
    ])
    with pytest.raises(DataError, match=r"renamed.jsonl:1: field 'question': missing"):
        load_dataset(p)
    ds = load_dataset(p, fields=FieldMap.parse(["question=problem", "response=solution", "gold=answer"]))
    assert [(s.question, s.gold) for s in ds] == [("What is 2 + 3?", "5"), ("What is 6 * 7?", "42"),
                                                  ("What is 10 / 4?", "2.5")]
    grades = grade_many([s.response for s in ds], [s.gold for s in ds], "numeric")
    assert [g.status for g in grades] == ["correct", "correct", "wrong"]
    assert [g.answer for g in grades] == ["5", "42", "2"]
    assert sum(g.score for g in grades) / len(grades) == pytest.approx(2 / 3)


# ---------------------------------------------------------------- byte-order marks


def test_utf8_bom_is_accepted(tmp_path):
    bom = b"\xef\xbb\xbf"
    jl = tmp_path / "bom.jsonl"
    jl.write_bytes(bom + json.dumps(ROW).encode() + b"\n" + json.dumps({**ROW, "id": "b"}).encode() + b"\n")
    assert [s.id for s in load_dataset(jl)] == ["a", "b"]
    js = tmp_path / "bomarr.json"
    js.write_bytes(bom + json.dumps([ROW]).encode())
    assert [s.id for s in load_dataset(js)] == ["a"]
    obj = tmp_path / "bomdata.json"
    obj.write_bytes(bom + json.dumps({"data": [{**ROW, "id": "c"}]}).encode())
    ev = tmp_path / "ev.jsonl"
    ev.write_bytes(bom + b'{"id": "e1", "question": "Q", "gold": 3}\n')
    assert [i.gold for i in load_eval_set(ev)] == ["3"]
    ev.unlink()
    # in a pool directory too (the .json files are sniffed past the BOM)
    pool = load_pool(tmp_path)
    assert [(d.name, len(d)) for d in pool] == [("bom", 2), ("bomarr", 1), ("bomdata", 1)]
    assert pool.skipped == []


def test_bom_keeps_line_numbers_and_byte_offsets(tmp_path):
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(ROW).encode() + b"\n" + b'{"id": "b"\n')
    with pytest.raises(DataError, match=r"bom.jsonl:2: malformed JSON"):
        load_dataset(p)
    p.write_bytes(b"\xef\xbb\xbf" + b'{"id": "\xff"}\n')  # the BOM is bytes 0-2: 0xff is byte 11
    with pytest.raises(DataError, match=r"bom.jsonl:1: invalid UTF-8 at byte 11 of the line"):
        load_dataset(p)


def test_utf16_is_refused_with_a_clear_message(tmp_path):
    p = tmp_path / "u16.jsonl"
    p.write_bytes(json.dumps(ROW).encode("utf-16"))
    with pytest.raises(DataError) as e:
        load_dataset(p)
    assert rel(e, tmp_path) == "u16.jsonl: UTF-16 text (byte-order mark); save the file as UTF-8"
