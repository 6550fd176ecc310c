"""Reasoning traces in the R1 convention: ``<think>\\n{reasoning}\\n</think>\\n\\n{answer}``.

R1/QwQ-style teachers write their reasoning inside a ``<think>...</think>`` block and the final
answer after it; some sources give the reasoning separately (a ``reasoning_content`` field), and
the loader joins it to the answer with `join_reasoning`, so a `Sample.response` always holds both.
Some traces have only the closing ``</think>`` (the chat template wrote the opening tag into the
prompt); that counts as a think block too.

`final_answer_text` is what answer extraction should read: the text after the reasoning, so
numbers and "the answer is" phrases inside the reasoning never pass for the final answer.
"""

from __future__ import annotations

import re

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_TAG_RE = re.compile(r"</?think>")


def has_think_block(text: str) -> bool:
    """Whether `text` has a ``<think>`` or ``</think>`` tag."""
    return _TAG_RE.search(text) is not None


def join_reasoning(reasoning: str, answer: str) -> str:
    """The R1 form of a trace given as reasoning and answer: ``<think>\\n{reasoning}\\n</think>\\n\\n{answer}``
    (newlines around the reasoning and before the answer are not doubled)."""
    return f"{THINK_OPEN}\n{reasoning.strip(chr(10))}\n{THINK_CLOSE}\n\n{answer.lstrip(chr(10))}"


def final_answer_text(response: str) -> str:
    """The final answer part of a trace: the text after the last ``</think>`` (leading whitespace
    removed); the whole response when it has no think tag; the empty string when the trace ends
    inside an unclosed ``<think>`` (it never reached its answer)."""
    close = response.rfind(THINK_CLOSE)
    if response.rfind(THINK_OPEN) > close:
        return ""
    if close < 0:
        return response
    return response[close + len(THINK_CLOSE):].lstrip()
