"""Render a conversation as the student sees it: its chat template, or a plain fallback.

A tokenizer without a chat template gets the plain format

    {system}\\n\\n            (each system turn, when present)
    Question: {user}\\n       (each user turn)
    Answer: {assistant}\\n\\n  (each earlier assistant turn)
    Answer: {response}        (the response turn)

and the tokenizer's own special tokens (e.g. a BOS) are added around it; the EOS token follows the
response when the full conversation is encoded. The generation prompt is "Answer:" without the
trailing space: byte-level and SentencePiece tokenizers fold that space into the answer's first
token (" 42"), so a prompt ending in a bare space token would put generation off-distribution. The
model therefore generates " 42 ...", and the space is part of the first response token (masking
clips its offsets to the response text).
"""

from __future__ import annotations

from collections.abc import Sequence

from dmc.data.schema import Message

PLAIN_QUESTION = "Question: {content}\n"
PLAIN_GENERATION_PROMPT = "Answer:"
PLAIN_ANSWER = "Answer: "
PLAIN_PREVIOUS_ANSWER = "Answer: {content}\n\n"
PLAIN_SYSTEM = "{content}\n\n"


def _check_messages(messages: Sequence[Message]) -> None:
    if not messages:
        raise ValueError("prompt is empty: expected at least one message (a user turn)")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"prompt message {i} must be a dict with 'role' and 'content', got {m!r}")
        if not isinstance(m["content"], str):
            raise ValueError(f"prompt message {i} ('{m['role']}'): content must be a str, got {type(m['content']).__name__}")


def _render_plain_turns(messages: Sequence[Message]) -> str:
    _check_messages(messages)
    parts: list[str] = []
    for i, m in enumerate(messages):
        role, content = m["role"], m["content"]
        if role == "system":
            parts.append(PLAIN_SYSTEM.format(content=content))
        elif role == "user":
            parts.append(PLAIN_QUESTION.format(content=content))
        elif role == "assistant":
            parts.append(PLAIN_PREVIOUS_ANSWER.format(content=content))
        else:
            raise ValueError(f"prompt message {i}: role {role!r} has no plain-format rendering (system/user/assistant)")
    return "".join(parts)


def render_plain_prompt(messages: Sequence[Message]) -> str:
    """The plain-format prompt, ending with the generation prompt "Answer:"."""
    return _render_plain_turns(messages) + PLAIN_GENERATION_PROMPT


def render_prompt(tokenizer, messages: Sequence[Message]) -> str:
    """The prompt text with the generation prompt (the assistant turn's header) appended."""
    _check_messages(messages)
    if getattr(tokenizer, "chat_template", None) is None:
        return render_plain_prompt(messages)
    return tokenizer.apply_chat_template(list(map(dict, messages)), tokenize=False, add_generation_prompt=True)


def render_conversation(tokenizer, messages: Sequence[Message], response: str) -> str:
    """The full conversation text: prompt followed by the assistant's response turn."""
    _check_messages(messages)
    if getattr(tokenizer, "chat_template", None) is None:
        return _render_plain_turns(messages) + PLAIN_ANSWER + response
    conv = [*map(dict, messages), {"role": "assistant", "content": response}]
    return tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=False)
