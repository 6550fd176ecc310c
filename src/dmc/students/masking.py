"""Exact response masking for any chat template.

The response's token positions are found from character spans, never from hard-coded markers:
the conversation is rendered with and without the assistant turn (and once with a sentinel as the
assistant's content, which shows exactly where the template puts the content), the response
text's character span is located inside the full rendering, the rendering is tokenized once with
offsets, and the response tokens are the tokens whose character span overlaps the response span.
Consequences, by design:

- a token that merges across the prompt/response boundary (e.g. "\\n\\n" where the generation
  prompt ends in "\\n" and the response starts with one, or " 42" after "Answer: ") counts as a
  response token; its offsets are clipped to the response;
- tokens the template appends after the response (end-of-turn, EOS, a newline) are not response
  tokens: `response_end` stops at the last token overlapping the response text, so only the
  response text's own tokens are scored;
- `offsets` tile the located response text: contiguous, in order, non-overlapping. Tokenizers
  that trim whitespace from offsets leave gaps, which are given to the following token (the
  whitespace it carries); a character split over several byte-level tokens (multi-byte UTF-8) is
  attributed to the first of them and the others get empty spans.

Earlier assistant turns (part of the prompt) are found the same way when asked for
(`Student.encode(..., all_turns=True)`): each one's content is located in the same full rendering
with the sentinel in its place, and its tokens are those overlapping its content
(`token_range`; `Encoded.prev_spans`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Encoded:
    """A tokenized conversation with the response's exact token range.

    input_ids: the templated conversation (prompt + response + any tokens the template appends).
    response_start: index of the first response token in input_ids.
    response_end: one past the last response token (== len(input_ids) unless the template
        appends tokens after the response, such as an end-of-turn token).
    truncated: True when `max_length` cut response tokens.
    offsets: per response token, (char_start, char_end) into the response text.
    prev_spans: per earlier assistant turn of the prompt, in order, its content's token range
        [start, end) in input_ids (cut at `max_length`); empty unless asked for
        (`Student.encode(..., all_turns=True)`) or when the prompt has no assistant turn.
    """

    input_ids: list[int]
    response_start: int
    response_end: int
    truncated: bool
    offsets: list[tuple[int, int]]
    prev_spans: tuple[tuple[int, int], ...] = ()

    @property
    def n_response_tokens(self) -> int:
        return self.response_end - self.response_start

    @property
    def response_ids(self) -> list[int]:
        return self.input_ids[self.response_start : self.response_end]


class TemplateMismatchError(ValueError):
    """The chat template does not reproduce the response text inside the rendered conversation."""


# Stand-in response used to learn where a template puts the assistant's content: private-use
# characters no template or tokenizer treats specially, and no whitespace for `| trim` to remove.
SENTINEL = "\ue000dmc-response\ue001"


def locate_response(
    prompt_text: str, full_text: str, response: str, sentinel_text: str | None = None
) -> tuple[int, int, int]:
    """Find the response inside the rendered conversation.

    `sentinel_text` is the same conversation rendered with SENTINEL as the response; when given,
    the template's exact text before and after the content is known, and the response is placed
    there without searching (a response that also occurs in the prompt or in the template's
    markers cannot be mistaken). Otherwise, or when the template rewrites the content, the
    response is searched for after the part the full rendering shares with the prompt rendering.

    Returns (start, end, shift): the response's character span in `full_text`, and where that
    span begins inside `response` (non-zero only when the template strips leading whitespace
    from the content, as Llama 3's `| trim` does: the located text is then `response.strip()`).
    Raises TemplateMismatchError when the template alters the response text in any other way.
    """
    if sentinel_text is not None and sentinel_text.count(SENTINEL) == 1:
        pre, suf = sentinel_text.split(SENTINEL)
        if full_text.startswith(pre) and full_text.endswith(suf) and len(full_text) >= len(pre) + len(suf):
            shown = full_text[len(pre) : len(full_text) - len(suf)]
            if shown == response:
                return len(pre), len(pre) + len(response), 0
            stripped = response.strip()
            if shown == stripped:
                shift = len(response) - len(response.lstrip()) if stripped else 0
                return len(pre), len(pre) + len(stripped), shift
    # Common case: the full rendering extends the prompt rendering and the response follows it.
    if full_text.startswith(prompt_text) and full_text.startswith(response, len(prompt_text)):
        return len(prompt_text), len(prompt_text) + len(response), 0
    # Otherwise search after the part shared with the prompt rendering (never inside the prompt).
    lcp = 0
    for a, b in zip(prompt_text, full_text):
        if a != b:
            break
        lcp += 1
    candidates = [(response, 0)]
    stripped = response.strip()
    if stripped != response:
        candidates.append((stripped, len(response) - len(response.lstrip())))
    for text, shift in candidates:
        if not text:
            # An empty (or all-whitespace) response sits where the prompt rendering ends.
            pos = len(prompt_text) if full_text.startswith(prompt_text) else lcp
            return pos, pos, shift
        pos = full_text.find(text, lcp)
        if pos >= 0:
            return pos, pos + len(text), shift
    raise TemplateMismatchError(
        "the chat template does not reproduce the response text verbatim inside the rendered conversation "
        f"(response starts {response[:60]!r}); templates that rewrite assistant content cannot be masked exactly"
    )


def _overlapping(offsets: list[tuple[int, int]], a: int, b: int) -> tuple[int | None, int | None]:
    """The first and last non-empty tokens whose character span overlaps [a, b) (None when none)."""
    first = last = None
    for i, (s, e) in enumerate(offsets):
        if e > s and s < b and e > a:
            if first is None:
                first = i
            last = i
    return first, last


def token_range(offsets: list[tuple[int, int]], span: tuple[int, int]) -> tuple[int, int]:
    """The tokens [start, end) whose character span overlaps `span` (the same rule as the response's
    tokens). An empty span gives an empty range right after the last token ending at or before it."""
    a, b = span
    first, last = _overlapping(offsets, a, b)
    if first is None or last is None:
        pos = 0
        for i, (s, e) in enumerate(offsets):
            if e > s and e <= a:
                pos = i + 1
        return pos, pos
    return first, last + 1


def select_response_tokens(
    input_ids: list[int],
    offsets: list[tuple[int, int]],
    span: tuple[int, int],
    shift: int,
    *,
    max_length: int | None = None,
) -> Encoded:
    """Build an Encoded from a tokenized rendering, its offsets and the response's character span."""
    a, b = span
    if len(input_ids) != len(offsets):
        raise ValueError(f"{len(input_ids)} token ids but {len(offsets)} offsets")
    first, last = _overlapping(offsets, a, b)
    if first is None:
        # Empty response: it sits right after the prompt's tokens, i.e. after the leading run of
        # zero-width tokens (a BOS added by the tokenizer) and every token ending at or before it.
        start = 0
        while start < len(offsets) and offsets[start][0] == offsets[start][1] == 0:
            start += 1
        for i, (s, e) in enumerate(offsets):
            if e > s and e <= a:
                start = max(start, i + 1)
        rs, re_, offs = start, start, []
    else:
        assert last is not None
        rs, re_ = first, last + 1
        offs = []
        prev_end = shift
        for s, e in offsets[rs:re_]:
            e_rel = min(e, b) - a + shift
            offs.append((prev_end, max(e_rel, prev_end)))
            prev_end = offs[-1][1]
        # The last token reaches the end of the located text (whitespace trimmed from offsets).
        offs[-1] = (offs[-1][0], max(offs[-1][1], b - a + shift))

    ids = list(input_ids)
    truncated = False
    if max_length is not None:
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        if len(ids) > max_length:
            ids = ids[:max_length]
            if re_ > max_length:
                truncated = True
                keep = max(0, max_length - rs)
                offs = offs[:keep]
                rs = min(rs, max_length)
                re_ = max_length
    return Encoded(input_ids=ids, response_start=rs, response_end=re_, truncated=truncated, offsets=offs)
