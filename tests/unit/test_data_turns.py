"""Multi-turn conversations and reasoning fields in the loader; `final_answer_text`."""

import json
from pathlib import Path

import datasets
import pytest

from dmc.data import DataError, FieldMap, final_answer_text, load_dataset, load_eval_set, save_dataset
from dmc.data.reasoning import has_think_block, join_reasoning


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def load(tmp_path, rows, **kw):
    return load_dataset(write_lines(tmp_path / "d.jsonl", rows), **kw)


def err(tmp_path, rows, loader=load_dataset, **kw) -> str:
    p = write_lines(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError) as e:
        loader(p, **kw)
    return str(e.value).replace(str(tmp_path) + "/", "")


def sys_(c):
    return {"role": "system", "content": c}


def user(c):
    return {"role": "user", "content": c}


def asst(c, **kw):
    return {"role": "assistant", "content": c, **kw}


# ---------------------------------------------------------------- roles


@pytest.mark.parametrize("field", ["messages", "prompt"])
def test_unknown_role_names_message_and_valid_roles(tmp_path, field):
    msgs = [user("Q"), {"role": "wizard", "content": "abracadabra"}, asst("A")]
    row = {"messages": msgs} if field == "messages" else {"prompt": msgs[:2], "completion": "A"}
    assert err(tmp_path, [row]) == (f"d.jsonl:1: field '{field}[1].role': unknown role 'wizard'; "
                                    "valid roles: system, user, assistant, tool")


def test_capitalised_role_gets_a_hint(tmp_path):
    message = err(tmp_path, [{"messages": [{"role": "User", "content": "Q"}, asst("A")]}])
    assert message == ("d.jsonl:1: field 'messages[0].role': unknown role 'User' (roles are lowercase); "
                       "valid roles: system, user, assistant, tool")


def test_tool_turns_are_accepted(tmp_path):
    msgs = [user("Q"), asst("calling"), {"role": "tool", "content": "42"}, asst("It is 42.")]
    s = load(tmp_path, [{"messages": msgs}]).samples[0]
    assert s.prompt == tuple(msgs[:-1]) and s.response == "It is 42."


# ---------------------------------------------------------------- user turn required


@pytest.mark.parametrize("row,expected", [
    ({"messages": [sys_("Be brief."), asst("A")]},
     "d.jsonl:1: field 'messages': no user turn before the assistant's trace (found only system); "
     "the prompt needs a user's question"),
    ({"messages": [asst("A")]},
     "d.jsonl:1: field 'messages': no user turn before the assistant's trace (found nothing); "
     "the prompt needs a user's question"),
    ({"conversations": [{"from": "system", "value": "S"}, {"from": "gpt", "value": "A"}]},
     "d.jsonl:1: field 'conversations': no user turn before the assistant's trace (found only system); "
     "the prompt needs a user's question"),
    ({"prompt": [sys_("S")], "completion": "A"},
     "d.jsonl:1: field 'prompt': no user turn in the prompt (found only system); the prompt needs a user's question"),
])
def test_row_without_user_turn_is_refused(tmp_path, row, expected):
    assert err(tmp_path, [row]) == expected


def test_eval_item_without_user_turn_is_refused(tmp_path):
    rows = [{"messages": [sys_("S"), asst("A")], "gold": "1"}]
    assert err(tmp_path, rows, load_eval_set) == (
        "d.jsonl:1: field 'messages': no user turn before the last assistant turn (found only system); "
        "the prompt needs a user's question")


def test_skip_policy_rejects_rows_without_user_turn(tmp_path):
    rows = [{"id": "bad", "messages": [sys_("S"), asst("A")]}, {"id": "ok", "messages": [user("Q"), asst("A")]}]
    ds = load(tmp_path, rows, on_error="skip")
    assert [s.id for s in ds] == ["ok"] and ds.n_rejected == 1


# ---------------------------------------------------------------- multi-turn


CONVO = [sys_("Be brief."), user("Q1"), asst("A1"), user("Q2"), asst("A2")]


def test_multi_turn_prompt_is_everything_before_last_assistant(tmp_path):
    s = load(tmp_path, [{"messages": CONVO, "gold": "2"}]).samples[0]
    assert s.prompt == tuple(CONVO[:-1])
    assert s.response == "A2" and s.question == "Q2" and s.gold == "2"
    assert s.messages() == CONVO


def test_multi_turn_sharegpt(tmp_path):
    conv = [{"from": "system", "value": "S"}, {"from": "human", "value": "Q1"}, {"from": "gpt", "value": "A1"},
            {"from": "human", "value": "Q2"}, {"from": "gpt", "value": "A2"}]
    s = load(tmp_path, [{"conversations": conv}]).samples[0]
    assert [m["role"] for m in s.prompt] == ["system", "user", "assistant", "user"]
    assert s.response == "A2" and s.question == "Q2"


def test_multi_turn_completion_turns_join_the_prompt(tmp_path):
    row = {"prompt": [sys_("S"), user("Q")],
           "completion": [asst("calling"), {"role": "tool", "content": "42"}, asst("It is 42.")]}
    s = load(tmp_path, [row]).samples[0]
    assert [m["role"] for m in s.prompt] == ["system", "user", "assistant", "tool"]
    assert s.response == "It is 42."


def test_multi_turn_and_reasoning_save_roundtrip(tmp_path):
    msgs = [*CONVO[:-1], asst("A2", reasoning_content="why")]
    ds = load(tmp_path, [{"id": "c", "messages": CONVO}, {"id": "r", "messages": msgs}])
    save_dataset(ds, tmp_path / "out.jsonl")
    again = load_dataset(tmp_path / "out.jsonl", name="d")  # the <think> block is read back as it is
    assert again.samples == ds.samples and [s.hash for s in again] == [s.hash for s in ds]


def test_eval_multi_turn_keeps_earlier_assistant_turns(tmp_path):
    rows = [{"id": "e1", "messages": CONVO, "gold": "2"}, {"id": "e2", "messages": CONVO[:-1], "gold": "2"}]
    items = load_eval_set(write_lines(tmp_path / "e.jsonl", rows))
    assert [i.prompt for i in items] == [tuple(CONVO[:-1])] * 2
    assert items[0].question == "Q2"
    # the eval question and a trace of the same conversation share their question hash
    trace = load(tmp_path, [{"messages": CONVO, "gold": "2"}]).samples[0]
    assert items[0].question_hash == trace.question_hash


# ---------------------------------------------------------------- reasoning fields


R1 = "<think>\nadd them\n</think>\n\nThe answer is 5."


def test_reasoning_content_in_last_assistant_message(tmp_path):
    msgs = [sys_("S"), user("Q1"), asst("A1", reasoning_content="old thoughts"), user("Q"),
            asst("The answer is 5.", reasoning_content="add them")]
    s = load(tmp_path, [{"messages": msgs}]).samples[0]
    assert s.response == R1
    assert s.prompt[2] == asst("A1")  # earlier turns' reasoning is dropped
    assert final_answer_text(s.response) == "The answer is 5."


def test_reasoning_content_column(tmp_path):
    row = {"question": "Q", "response": "The answer is 5.", "reasoning_content": "add them", "gold": "5"}
    s = load(tmp_path, [row]).samples[0]
    assert s.response == R1 and s.question == "Q"


def test_reasoning_column_beside_completion_and_beside_messages(tmp_path):
    rows = [{"prompt": "Q", "completion": "The answer is 5.", "reasoning_content": "add them"},
            {"messages": [user("Q2"), asst("The answer is 5.")], "reasoning_content": "add them"}]
    assert [s.response for s in load(tmp_path, rows)] == [R1, R1]


def test_reasoning_column_renamed(tmp_path):
    row = {"question": "Q", "response": "The answer is 5.", "thinking": "add them"}
    ds = load(tmp_path, [row], fields=FieldMap.parse(["reasoning=thinking"]))
    assert ds.samples[0].response == R1
    assert load(tmp_path, [row]).samples[0].response == "The answer is 5."  # not read under the default name


def test_reasoning_newlines_not_doubled(tmp_path):
    row = {"question": "Q", "response": "\nThe answer is 5.", "reasoning_content": "\nadd them\n"}
    assert load(tmp_path, [row]).samples[0].response == R1


@pytest.mark.parametrize("value", [None, "", "  \n"])
def test_empty_reasoning_is_absent(tmp_path, value):
    row = {"question": "Q", "response": "The answer is 5.", "reasoning_content": value}
    assert load(tmp_path, [row]).samples[0].response == "The answer is 5."


def test_reasoning_from_datasets_messages(tmp_path):
    hf = datasets.Dataset.from_list([
        {"messages": [user("Q"), asst("The answer is 5.", reasoning_content="add them")]},
        {"messages": [user("Q2"), asst("No reasoning.", reasoning_content=None)]},
    ])
    assert [s.response for s in load_dataset(hf, name="hf")] == [R1, "No reasoning."]


@pytest.mark.parametrize("response", [R1, "add them\n</think>\n\nThe answer is 5."])
def test_think_block_in_content_is_kept(tmp_path, response):
    rows = [{"question": "Q", "response": response}, {"messages": [user("Q2"), asst(response)]}]
    assert [s.response for s in load(tmp_path, rows)] == [response, response]


@pytest.mark.parametrize("row,expected", [
    ({"question": "Q", "response": R1, "reasoning_content": "more"},
     "d.jsonl:1: field 'reasoning_content': ambiguous: reasoning is given here and 'response' already has a "
     "<think> block; keep one"),
    ({"messages": [user("Q"), asst(R1, reasoning_content="more")]},
     "d.jsonl:1: field 'messages[1].reasoning_content': ambiguous: reasoning is given here and "
     "'messages[1].content' already has a <think> block; keep one"),
    ({"messages": [user("Q"), asst("A", reasoning_content="one")], "reasoning_content": "two"},
     "d.jsonl:1: field 'messages[1].reasoning_content': ambiguous: reasoning is given both here and in "
     "'reasoning_content'; keep one"),
    ({"question": "Q", "response": "A", "reasoning_content": "<think>x</think>"},
     "d.jsonl:1: field 'reasoning_content': has a <think> tag: give the reasoning without tags (it is wrapped in "
     "<think>...</think> when loaded), or the whole trace in the content"),
    ({"question": "Q", "response": "A", "reasoning_content": ["x"]},
     "d.jsonl:1: field 'reasoning_content': expected a string, got list"),
])
def test_ambiguous_or_bad_reasoning_is_an_error(tmp_path, row, expected):
    assert err(tmp_path, [row]) == expected


def test_eval_set_ignores_reasoning(tmp_path):
    rows = [{"question": "Q", "gold": "5", "reasoning_content": "x"}]
    assert load_eval_set(write_lines(tmp_path / "e.jsonl", rows))[0].question == "Q"


# ---------------------------------------------------------------- final_answer_text


@pytest.mark.parametrize("response,expected", [
    (R1, "The answer is 5."),  # closed block
    ("The answer is 5.", "The answer is 5."),  # no block: the whole response
    ("", ""),
    ("<think>\n2 + 3 = 5, so maybe", ""),  # unclosed: no answer reached
    ("<think>a</think>\n\nfirst <think>b</think> final 7", "final 7"),  # several blocks: after the last
    ("<think>a</think> partial <think>still thinking 9", ""),  # the last block is unclosed
    ("the template opened it\n</think>\n\n42", "42"),  # only the closing tag
    ("<think>x</think>", ""),  # closed, nothing after
])
def test_final_answer_text(response, expected):
    assert final_answer_text(response) == expected


def test_join_and_detect():
    assert join_reasoning("add them", "The answer is 5.") == R1
    assert has_think_block(R1) and has_think_block("x</think>") and not has_think_block("think about it")
