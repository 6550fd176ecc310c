"""Chat templating and exact response masking (dmc.students.Student.encode and friends)."""

from __future__ import annotations

import random

import pytest

from dmc.students import Student, TemplateMismatchError, tiny_student, tiny_tokenizer
from dmc.students.template import render_prompt

USER = ({"role": "user", "content": "What is 12 + 35?"},)
SYSTEM_USER = ({"role": "system", "content": "You are a careful tutor."}, {"role": "user", "content": "Add 7 and 8."})
MULTI = (
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And 3 + 3?"},
)
RESPONSE = "We add: 12 + 35 = 47.\nThe answer is 47."

# A template whose generation prompt ends in a space: byte-level BPE folds that space into the
# response's first token (" 42"), so one token straddles the prompt/response boundary.
MERGE_TEMPLATE = (
    "{%- for m in messages %}"
    "{%- if m['role'] == 'system' %}{{ m['content'] + '\\n' }}"
    "{%- elif m['role'] == 'user' %}{{ 'User: ' + m['content'] + '\\n' }}"
    "{%- else %}{{ 'Assistant: ' + m['content'] + '\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ 'Assistant: ' }}{%- endif %}"
)


def merge_student() -> Student:
    base = tiny_student("chatml")
    tok = tiny_tokenizer("chatml")
    tok.chat_template = MERGE_TEMPLATE
    return Student.from_model(base.model, tok, "tiny-merge")


def reconstruct(response: str, offsets) -> str:
    return "".join(response[s:e] for s, e in offsets)


def assert_tiles(offsets, start: int, end: int) -> None:
    """Offsets are contiguous, in order, and cover [start, end) exactly."""
    assert offsets, "no response tokens"
    assert offsets[0][0] == start
    assert offsets[-1][1] == end
    for (s0, e0), (s1, e1) in zip(offsets, offsets[1:]):
        assert s0 <= e0 and e0 == s1 and s1 <= e1


@pytest.mark.parametrize("template", ["chatml", "llama3", "none"])
@pytest.mark.parametrize("prompt", [USER, SYSTEM_USER, MULTI], ids=["user", "system+user", "multi-turn"])
def test_response_tokens_decode_to_response(template, prompt):
    s = tiny_student(template)
    enc = s.encode(prompt, RESPONSE)
    tok = s.tokenizer
    n = enc.response_end - enc.response_start
    assert n == len(enc.offsets) > 0
    assert not enc.truncated
    assert_tiles(enc.offsets, 0, len(RESPONSE))
    assert reconstruct(RESPONSE, enc.offsets) == RESPONSE
    # Each response token's own text is exactly its slice of the response (no merge here except
    # the plain format's leading space, checked in its own test).
    body = tok.decode(enc.input_ids[enc.response_start : enc.response_end])
    if template == "none":
        # The template's space before the response either merges into its first token or stays
        # a token of its own (then it is a prompt token), depending on the vocabulary.
        assert body in (RESPONSE, " " + RESPONSE)
    else:
        assert body == RESPONSE
        for t, (a, b) in zip(enc.input_ids[enc.response_start : enc.response_end], enc.offsets):
            assert tok.decode([t]) == RESPONSE[a:b]
    # The template appends end-of-turn tokens after the response; they are outside the range.
    tail = enc.input_ids[enc.response_end :]
    assert tail, "every tiny template appends an end-of-turn/EOS token"
    assert tail[0] in s.stop_token_ids


@pytest.mark.parametrize("template", ["chatml", "llama3"])
def test_prompt_tokens_equal_encode_prompt(template):
    s = tiny_student(template)
    for prompt in (USER, SYSTEM_USER, MULTI):
        enc = s.encode(prompt, RESPONSE)
        assert enc.input_ids[: enc.response_start] == s.encode_prompt(prompt)
    # The rendering is exactly what apply_chat_template would tokenize.
    full = s.tokenizer.apply_chat_template(
        [*map(dict, USER), {"role": "assistant", "content": RESPONSE}], tokenize=True, return_dict=False
    )
    assert s.encode(USER, RESPONSE).input_ids == list(full)


def test_known_template_layouts():
    chat = tiny_student("chatml")
    enc = chat.encode(USER, "47")
    tok = chat.tokenizer
    assert tok.decode(enc.input_ids) == (
        "<|im_start|>user\nWhat is 12 + 35?<|im_end|>\n<|im_start|>assistant\n47<|im_end|>\n"
    )
    assert tok.convert_ids_to_tokens(enc.input_ids[enc.response_end :]) == ["<|im_end|>", "Ċ"]
    assert tok.convert_ids_to_tokens(enc.input_ids[enc.response_start - 1 : enc.response_start]) == ["Ċ"]

    ll = tiny_student("llama3")
    enc = ll.encode(USER, "47")
    t3 = ll.tokenizer
    assert t3.decode(enc.input_ids) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 12 + 35?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n47<|eot_id|>"
    )
    assert enc.input_ids[0] == t3.bos_token_id and enc.input_ids.count(t3.bos_token_id) == 1
    assert enc.input_ids[enc.response_end :] == [t3.convert_tokens_to_ids("<|eot_id|>")]

    plain = tiny_student("none")
    enc = plain.encode(SYSTEM_USER, "15")
    tp = plain.tokenizer
    assert not plain.has_chat_template
    assert tp.decode(enc.input_ids) == (
        "<|begin_of_text|>You are a careful tutor.\n\nQuestion: Add 7 and 8.\nAnswer: 15<|end_of_text|>"
    )
    assert enc.input_ids[enc.response_end :] == [tp.eos_token_id]


def test_merge_across_boundary_counts_as_response_token():
    s = merge_student()
    response = "47 is the answer"
    enc = s.encode(USER, response)
    tok = s.tokenizer
    full = s.tokenizer.apply_chat_template(
        [*map(dict, USER), {"role": "assistant", "content": response}], tokenize=False
    )
    a = full.index("Assistant: ") + len("Assistant: ")
    raw = tok(full, add_special_tokens=False, return_offsets_mapping=True)
    first_span = raw["offset_mapping"][enc.response_start]
    # The first response token really straddles the boundary (it carries the template's space) ...
    assert first_span[0] < a < first_span[1]
    assert tok.convert_ids_to_tokens(enc.input_ids[enc.response_start]) == "Ġ47"
    # ... yet its offsets are clipped to the response, and the offsets rebuild the response exactly.
    assert enc.offsets[0] == (0, 2)
    assert_tiles(enc.offsets, 0, len(response))
    assert reconstruct(response, enc.offsets) == response
    assert tok.decode(enc.input_ids[enc.response_start : enc.response_end]) == " " + response
    # The generation prompt alone ends in a bare space token, which the full rendering merged away.
    prompt_ids = s.encode_prompt(USER)
    assert tok.convert_ids_to_tokens(prompt_ids[-1]) == "Ġ"
    assert prompt_ids[:-1] == enc.input_ids[: enc.response_start]


def test_plain_format_merge_and_generation_prompt():
    s = tiny_student("none")
    response = "15 apples"
    enc = s.encode(USER, response)
    tok = s.tokenizer
    assert tok.convert_ids_to_tokens(enc.input_ids[enc.response_start]) == "Ġ15"
    assert enc.offsets[0] == (0, 2)
    assert reconstruct(response, enc.offsets) == response
    prompt_ids = s.encode_prompt(USER)
    assert tok.decode(prompt_ids) == "<|begin_of_text|>Question: What is 12 + 35?\nAnswer:"
    # Generation prompt "Answer:" is exactly the prompt part of the full encoding: the model then
    # generates " 15", the token it is trained and scored on.
    assert enc.input_ids[: enc.response_start] == prompt_ids


def test_llama3_trims_content_and_offsets_point_into_original():
    s = tiny_student("llama3")
    response = "  The answer is 5.\n\n"
    enc = s.encode(USER, response)
    stripped = response.strip()
    assert s.tokenizer.decode(enc.input_ids[enc.response_start : enc.response_end]) == stripped
    assert_tiles(enc.offsets, 2, 2 + len(stripped))
    assert reconstruct(response, enc.offsets) == stripped


def test_response_equal_to_question_or_markers_is_located_after_prompt():
    s = tiny_student("chatml")
    for response in ("What is 12 + 35?", "assistant\n", "user", "<|im_start|>"):
        enc = s.encode(USER, response)
        assert enc.input_ids[: enc.response_start] == s.encode_prompt(USER), response
        assert reconstruct(response, enc.offsets) == response


def test_unicode_and_random_responses_tile():
    rng = random.Random(0)
    words = ["step", "12", "+", "35", "=", "47", "the", "answer", "é", "😀", "\n", "  ", "x²", "Σ", ".", "\t"]
    students = [tiny_student(t) for t in ("chatml", "llama3", "none")] + [merge_student()]
    for _ in range(40):
        response = "".join(rng.choice(words) + rng.choice(["", " ", "\n"]) for _ in range(rng.randint(1, 12)))
        for s in students:
            enc = s.encode(SYSTEM_USER, response)
            shown = response.strip() if s.name.startswith("tiny-llama3") else response
            lead = len(response) - len(response.lstrip()) if s.name.startswith("tiny-llama3") and shown else 0
            if not shown:
                assert enc.response_end == enc.response_start and enc.offsets == []
                continue
            assert len(enc.offsets) == enc.response_end - enc.response_start
            assert_tiles(enc.offsets, lead, lead + len(shown))
            assert reconstruct(response, enc.offsets) == shown
            if s.has_chat_template and s.name != "tiny-merge":
                assert s.tokenizer.decode(enc.input_ids[enc.response_start : enc.response_end]) == shown


@pytest.mark.parametrize("template", ["chatml", "llama3", "none"])
def test_truncation(template):
    s = tiny_student(template)
    full = s.encode(USER, RESPONSE)
    n_resp = full.response_end - full.response_start
    # Cut in the middle of the response.
    cut = full.response_start + n_resp // 2
    enc = s.encode(USER, RESPONSE, max_length=cut)
    assert enc.truncated
    assert len(enc.input_ids) == cut == enc.response_end
    assert enc.input_ids == full.input_ids[:cut]
    assert enc.offsets == full.offsets[: n_resp // 2]
    assert RESPONSE.startswith(reconstruct(RESPONSE, enc.offsets))
    # Cutting only the template's trailing tokens leaves the response whole.
    enc = s.encode(USER, RESPONSE, max_length=full.response_end)
    assert not enc.truncated and enc.response_end == full.response_end == len(enc.input_ids)
    assert enc.offsets == full.offsets
    # A prompt longer than max_length: no response tokens, flagged.
    enc = s.encode(USER, RESPONSE, max_length=3)
    assert enc.truncated and enc.response_start == enc.response_end == 3 and enc.offsets == []
    # No cut at all.
    enc = s.encode(USER, RESPONSE, max_length=len(full.input_ids))
    assert not enc.truncated and enc == full
    with pytest.raises(ValueError, match="max_length"):
        s.encode(USER, RESPONSE, max_length=0)


@pytest.mark.parametrize("template,bos", [("chatml", False), ("llama3", True), ("none", True)])
def test_encode_response_only(template, bos):
    s = tiny_student(template)
    enc = s.encode_response_only(RESPONSE)
    tok = s.tokenizer
    if bos:
        assert enc.input_ids[0] == tok.bos_token_id and enc.response_start == 1
    else:
        assert enc.response_start == 0
    assert enc.response_end == len(enc.input_ids)
    assert tok.decode(enc.input_ids[enc.response_start :]) == RESPONSE
    assert reconstruct(RESPONSE, enc.offsets) == RESPONSE
    cut = s.encode_response_only(RESPONSE, max_length=enc.response_start + 3)
    assert cut.truncated and cut.response_end - cut.response_start == 3


def test_empty_response_and_bad_input():
    s = tiny_student("chatml")
    enc = s.encode(USER, "")
    assert enc.response_start == enc.response_end and enc.offsets == [] and not enc.truncated
    assert enc.input_ids[: enc.response_start] == s.encode_prompt(USER)
    with pytest.raises(ValueError, match="empty"):
        s.encode((), "x")
    with pytest.raises(ValueError, match="content"):
        s.encode(({"role": "user"},), "x")
    with pytest.raises(TypeError):
        s.encode(USER, None)  # type: ignore[arg-type]


def test_template_that_rewrites_content_is_an_error():
    s = tiny_student("chatml")
    s.tokenizer.chat_template = (
        "{%- for m in messages %}{{ m['role'] + ': ' + m['content'] | upper + '\\n' }}{%- endfor %}"
        "{%- if add_generation_prompt %}assistant: {% endif %}"
    )
    with pytest.raises(TemplateMismatchError, match="verbatim"):
        s.encode(USER, "the answer is 47")


def test_stop_tokens_and_render_prompt():
    for template, stop in (("chatml", "<|im_end|>"), ("llama3", "<|eot_id|>"), ("none", "<|end_of_text|>")):
        s = tiny_student(template)
        assert s.tokenizer.convert_tokens_to_ids(stop) in s.stop_token_ids
        assert s.render_prompt(USER) == render_prompt(s.tokenizer, USER)


def test_encodings_are_memoized_until_the_template_or_vocabulary_changes():
    s = tiny_student("chatml")
    first = s.encode(USER, RESPONSE)
    assert s.encode(USER, RESPONSE) is first  # the memo answers
    assert s.encode(USER, RESPONSE, max_length=8) is not first  # another truncation is another encoding
    assert s.encode(USER, RESPONSE, max_length=8).truncated
    # a message that cannot key the memo is encoded all the same
    odd = ({"role": "user", "content": "What is 12 + 35?", "tags": ["x"]},)
    assert s.encode(odd, RESPONSE).input_ids == first.input_ids
    # weights changing does not touch encodings: the memo survives a new fingerprint
    s.refresh_fingerprint()
    assert s.encode(USER, RESPONSE) is first
    s.tokenizer.chat_template = MERGE_TEMPLATE
    merged = s.encode(USER, RESPONSE)
    assert merged.input_ids != first.input_ids
    assert merged == merge_student().encode(USER, RESPONSE)
    s.tokenizer.add_tokens(["<extra>"])
    assert s.encode(USER, RESPONSE) is not merged
