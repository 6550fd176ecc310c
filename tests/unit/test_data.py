import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dmc.data import DataError, FieldMap, load_dataset, load_eval_set, load_pool, save_dataset

ROW = {"id": "a", "question": "Compute 2 + 3.", "response": "2 + 3 = 5\nThe answer is 5.", "gold": "5"}


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("\n".join(l if isinstance(l, str) else json.dumps(l) for l in lines) + "\n")
    return path


def err(tmp_path, lines, **kw) -> str:
    p = write_lines(tmp_path / "d.jsonl", lines)
    with pytest.raises(DataError) as e:
        load_dataset(p, **kw)
    return str(e.value).replace(str(tmp_path) + "/", "")


def test_question_response_shape(tmp_path):
    ds = load_dataset(write_lines(tmp_path / "teach.jsonl", [ROW, {**ROW, "id": "b", "gold": 7, "meta": {"t": 1}}]))
    assert ds.name == "teach" and len(ds) == 2
    s = ds.samples[0]
    assert s.prompt == ({"role": "user", "content": "Compute 2 + 3."},)
    assert s.question == "Compute 2 + 3." and s.response.endswith("is 5.") and s.gold == "5"
    assert ds.samples[1].gold == "7" and ds.samples[1].meta == {"t": 1}
    assert s.messages()[-1] == {"role": "assistant", "content": ROW["response"]}


def test_other_public_shapes(tmp_path):
    rows = [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1"},
                      {"role": "assistant", "content": "A1"}], "gold": "1"},
        {"conversations": [{"from": "human", "value": "Q2"}, {"from": "gpt", "value": "A2"}]},
        {"prompt": "Q3", "completion": "A3"},
        {"prompt": [{"role": "user", "content": "Q4"}], "completion": [{"role": "assistant", "content": "A4"}]},
    ]
    ds = load_dataset(write_lines(tmp_path / "mix.jsonl", rows))
    assert [s.question for s in ds] == ["Q1", "Q2", "Q3", "Q4"]
    assert [s.response for s in ds] == ["A1", "A2", "A3", "A4"]
    assert ds.samples[0].prompt[0] == {"role": "system", "content": "Be brief."}
    assert ds.samples[1].gold is None


def test_configurable_fields_and_hash_ids(tmp_path):
    p = write_lines(tmp_path / "x.jsonl", [{"problem": "Q", "solution": "S", "answer": "4"}])
    ds = load_dataset(p, fields=FieldMap(question="problem", response="solution", gold="answer"))
    s = ds.samples[0]
    assert (s.question, s.response, s.gold) == ("Q", "S", "4")
    again = load_dataset(p, fields=FieldMap(question="problem", response="solution", gold="answer"))
    assert len(s.id) == 16 and s.id == again.samples[0].id  # stable content-hash id


def test_json_parquet_directory_and_datasets(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([ROW]))
    pq.write_table(pa.Table.from_pylist([{**ROW, "id": "p"}]), tmp_path / "b.parquet")
    write_lines(tmp_path / "c.jsonl", [{**ROW, "id": "c"}])
    pool = load_pool(tmp_path)
    assert [d.name for d in pool] == ["a", "b", "c"]
    assert pool[1].samples[0].id == "p"
    import datasets

    hf = datasets.Dataset.from_list([ROW, {**ROW, "id": "z"}])
    assert [s.id for s in load_dataset(hf, name="hf")] == ["a", "z"]


def test_directory_of_shards_is_one_dataset(tmp_path):
    d = tmp_path / "pool" / "teacherA"
    d.mkdir(parents=True)
    write_lines(d / "part-0.jsonl", [ROW])
    write_lines(d / "part-1.jsonl", [{**ROW, "id": "b"}])
    pool = load_pool(tmp_path / "pool")
    assert [(p.name, len(p)) for p in pool] == [("teacherA", 2)]


@pytest.mark.parametrize("lines,expected", [
    ([ROW, "{not json"], "d.jsonl:2: malformed JSON: Expecting property name enclosed in double quotes (column 2)"),
    ([{"id": "a", "response": "r"}], "d.jsonl:1: field 'question': missing"),
    ([{**ROW, "response": "  "}], "d.jsonl:1: field 'response': empty"),
    ([{**ROW, "question": 5}], "d.jsonl:1: field 'question': expected a string, got int"),
    ([{**ROW, "gold": [5]}], "d.jsonl:1: field 'gold': expected a string or number, got list"),
    ([{**ROW, "meta": "x"}], "d.jsonl:1: field 'meta': expected an object, got str"),
    ([ROW, ROW], "d.jsonl:2: field 'id': duplicate id 'a' (first at d.jsonl:1)"),
    (["[1, 2]"], "d.jsonl:1: expected a JSON object, got list"),
    ([{"messages": [{"role": "user", "content": "q"}]}], "d.jsonl:1: field 'messages': the last message must be the assistant's trace"),
    ([{"messages": [{"role": "user", "content": "q"}, {"role": "assistant"}]}], "d.jsonl:1: field 'messages[1].content': missing or not a string"),
    ([{"conversations": [{"from": "alien", "value": "q"}, {"from": "gpt", "value": "a"}]}], "d.jsonl:1: field 'conversations[0].from': unknown speaker 'alien'"),
])
def test_bad_rows_fail_with_file_line_field(tmp_path, lines, expected):
    assert err(tmp_path, lines) == expected


def test_invalid_utf8_and_empty_file(tmp_path):
    p = tmp_path / "u.jsonl"
    p.write_bytes(json.dumps(ROW).encode() + b"\n" + b'{"id": "b", "question": "\xff"}\n')
    with pytest.raises(DataError, match=r"u.jsonl:2: invalid UTF-8 at byte 25 of the line"):
        load_dataset(p)
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(DataError, match=r"e.jsonl: empty file$"):
        load_dataset(tmp_path / "e.jsonl")
    (tmp_path / "blank.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match=r"blank.jsonl: no rows"):
        load_dataset(tmp_path / "blank.jsonl")


def test_skip_policy_keeps_valid_rows_and_writes_rejects(tmp_path):
    lines = [ROW, "{oops", {"id": "b", "question": "Q"}, {**ROW, "id": "c"}, ROW]
    p = write_lines(tmp_path / "d.jsonl", lines)
    rej = tmp_path / "rejects.jsonl"
    ds = load_dataset(p, on_error="skip", rejects=rej)
    assert [s.id for s in ds] == ["a", "c"] and ds.n_rejected == 3
    rows = [json.loads(l) for l in rej.read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in rows] == [(2, None), (3, "response"), (5, "id")]
    assert rows[1]["reason"] == "missing" and rows[1]["row"] == {"id": "b", "question": "Q"}
    assert rows[2]["reason"].startswith("duplicate id 'a'")


def test_eval_set_needs_gold(tmp_path):
    p = write_lines(tmp_path / "eval.jsonl", [{"id": "e1", "question": "Q", "gold": 3}, {"id": "e2", "question": "Q2"}])
    with pytest.raises(DataError, match=r"eval.jsonl:2: field 'gold': missing"):
        load_eval_set(p)
    items = load_eval_set(p, on_error="skip")
    assert [(i.id, i.question, i.gold) for i in items] == [("e1", "Q", "3")]


def test_save_roundtrip(tmp_path):
    ds = load_dataset(write_lines(tmp_path / "d.jsonl", [ROW]))
    save_dataset(ds, tmp_path / "out" / "d.jsonl")
    again = load_dataset(tmp_path / "out" / "d.jsonl")
    assert again.samples[0] == ds.samples[0] and again.samples[0].hash == ds.samples[0].hash
