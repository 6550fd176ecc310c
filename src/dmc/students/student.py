"""The Student: a causal LM, its tokenizer and chat template, with exact response masking."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from dmc.data.schema import Message
from dmc.memo import Memo
from dmc.students.fingerprint import student_fingerprint
from dmc.students.masking import (
    SENTINEL,
    Encoded,
    TemplateMismatchError,
    locate_response,
    select_response_tokens,
    token_range,
)
from dmc.students.template import render_conversation, render_prompt

# End-of-turn tokens of common chat formats; generation stops at whichever the vocabulary has.
_KNOWN_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "<end_of_turn>", "<|end|>", "</s>")
# Encodings kept per student: the curriculum re-scores the same probes at every interval, and
# rendering the template dominates an encoding's cost. Bounded, since each key holds its texts.
ENCODE_MEMO_SIZE = 4096


class Student:
    """A student model with its tokenizer.

    Encoding follows the tokenizer's chat template; without one, the plain format of
    `dmc.students.template` ("Question: {q}\\nAnswer: {response}", then EOS; generation starts
    from "Question: {q}\\nAnswer:"). The tokenizer must be a fast (tokenizers-backed) tokenizer,
    since masking needs character offsets.

    Attributes: `model` (a causal LM, possibly a PEFT model), `tokenizer`, `name`, `source` (where
    it was loaded from, or None); properties `fingerprint`, `device`, `has_chat_template`,
    `stop_token_ids`. The fingerprint is computed once and cached: call `refresh_fingerprint()`
    after changing the weights, tokenizer or template.
    """

    def __init__(self, model, tokenizer, name: str, *, source: str | None = None) -> None:
        if getattr(tokenizer, "backend_tokenizer", None) is None:
            raise TypeError(
                f"student {name!r}: tokenizer {type(tokenizer).__name__} is not a fast (tokenizers-backed) tokenizer; "
                "exact response masking needs character offsets"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.source = source
        self._fingerprint: str | None = None
        self._stop_ids: list[int] | None = None
        self._encoded: Memo[Encoded] = Memo(ENCODE_MEMO_SIZE)

    @classmethod
    def from_model(cls, model, tokenizer, name: str = "in-memory", *, source: str | None = None) -> "Student":
        """Wrap an in-memory model and tokenizer (a training checkpoint, a PEFT model ...)."""
        return cls(model, tokenizer, name, source=source)

    def __repr__(self) -> str:
        return f"Student(name={self.name!r}, device={self.device}, template={'chat' if self.has_chat_template else 'plain'})"

    # -- identity -------------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """16 hex chars; changes when weights, tokenizer or chat template change (computed once, cached)."""
        if self._fingerprint is None:
            self._fingerprint = student_fingerprint(self.model, self.tokenizer)
        return self._fingerprint

    def refresh_fingerprint(self) -> str:
        """Recompute the fingerprint (call after the weights, tokenizer or template changed)."""
        self._fingerprint = None
        self._stop_ids = None
        return self.fingerprint

    @property
    def device(self) -> torch.device:
        try:
            return next(self.model.parameters()).device
        except StopIteration:
            return torch.device("cpu")

    @property
    def context_length(self) -> int:
        """Tokens the student reads at once: the model's positions (max_position_embeddings), capped
        by the tokenizer's model_max_length when that is a real limit (tokenizers without one report
        a huge sentinel); 4096 when neither says."""
        limits = [getattr(self.model.config, "max_position_embeddings", None),
                  getattr(self.tokenizer, "model_max_length", None)]
        real = [int(x) for x in limits if isinstance(x, int) and 1 < x < 10**7]
        return min(real) if real else 4096

    @property
    def has_chat_template(self) -> bool:
        return getattr(self.tokenizer, "chat_template", None) is not None

    # -- text rendering -------------------------------------------------------------------------
    def render_prompt(self, prompt: Sequence[Message]) -> str:
        """The templated prompt text, ending with the generation prompt."""
        return render_prompt(self.tokenizer, prompt)

    def _tokenize(self, text: str, *, special: bool) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self.tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    # -- encoding ---------------------------------------------------------------------------------
    def encode(self, prompt: Sequence[Message], response: str, max_length: int | None = None, *,
               all_turns: bool = False) -> Encoded:
        """Tokenize prompt + response and locate the response tokens exactly (see dmc.students.masking).

        With a chat template the rendering already holds any BOS, so no special tokens are added;
        the plain format gets the tokenizer's own special tokens and EOS after the response.
        `max_length` truncates from the right and sets `truncated` when response tokens were cut.
        `all_turns` also locates each earlier assistant turn of the prompt (`Encoded.prev_spans`:
        the token range of its content in the same input_ids, cut at `max_length`).
        The last `ENCODE_MEMO_SIZE` encodings are memoized (keyed also by the chat template and the
        vocabulary size, so a changed template or added tokens re-encode): the returned value is
        shared, read it only.
        """
        if not isinstance(response, str):
            raise TypeError(f"response must be a str, got {type(response).__name__}")
        try:
            key = (tuple(tuple(sorted(m.items())) for m in prompt), response, max_length, all_turns,
                   getattr(self.tokenizer, "chat_template", None), len(self.tokenizer))
            hash(key)
        except TypeError:  # a message holding lists or dicts (tool calls): not memoized
            return self._encode(prompt, response, max_length, all_turns)
        enc = self._encoded.get(key)
        if enc is None:
            enc = self._encode(prompt, response, max_length, all_turns)
            self._encoded.put(key, enc)
        return enc

    def _encode(self, prompt: Sequence[Message], response: str, max_length: int | None, all_turns: bool) -> Encoded:
        prompt_text = render_prompt(self.tokenizer, prompt)
        full_text = render_conversation(self.tokenizer, prompt, response)
        sentinel_text = render_conversation(self.tokenizer, prompt, SENTINEL)
        a, b, shift = locate_response(prompt_text, full_text, response, sentinel_text)
        ids, offs = self._tokenize(full_text, special=not self.has_chat_template)
        if not self.has_chat_template:
            eos = self.tokenizer.eos_token_id
            if eos is not None and (not ids or ids[-1] != eos):
                ids.append(eos)
                offs.append((len(full_text), len(full_text)))
        enc = select_response_tokens(ids, offs, (a, b), shift, max_length=max_length)
        if not all_turns:
            return enc
        prev = self._assistant_spans(prompt, response, full_text, offs, a)
        n = len(enc.input_ids)
        return dataclasses.replace(enc, prev_spans=tuple((min(s, n), min(e, n)) for s, e in prev))

    def _assistant_spans(self, prompt: Sequence[Message], response: str, full_text: str,
                         offsets: list[tuple[int, int]], response_char_start: int) -> list[tuple[int, int]]:
        """Token ranges of the content of each assistant turn in `prompt`, in `full_text`'s tokens.

        Each turn's content is located like the response: the conversation rendered with SENTINEL
        as that turn's content shows the template's exact text before and after it (a template
        that renders earlier turns differently, or trims them, is handled as for the response);
        otherwise it is searched for after the rendering of the messages before it.
        """
        spans: list[tuple[int, int]] = []
        lo = 0  # each turn's content lies after the previous one's
        for j, m in enumerate(prompt):
            if m["role"] != "assistant":
                continue
            content = m["content"]
            marked = [*prompt[:j], {**m, "content": SENTINEL}, *prompt[j + 1:]]
            sentinel_text = render_conversation(self.tokenizer, marked, response)
            before = render_prompt(self.tokenizer, prompt[:j]) if j else ""
            try:
                a, b, _ = locate_response(before, full_text, content, sentinel_text)
            except TemplateMismatchError as e:
                raise TemplateMismatchError(f"assistant turn {j} of the prompt: {e}") from None
            if a < lo or b > response_char_start:
                raise TemplateMismatchError(
                    f"assistant turn {j} of the prompt: its content was not found in order before the response "
                    "in the rendered conversation")
            lo = b
            spans.append(token_range(offsets, (a, b)))
        return spans

    def encode_prompt(self, prompt: Sequence[Message]) -> list[int]:
        """Token ids of the templated prompt with the generation prompt (what generation starts from)."""
        ids, _ = self._tokenize(render_prompt(self.tokenizer, prompt), special=not self.has_chat_template)
        eos = self.tokenizer.eos_token_id
        if not self.has_chat_template and eos is not None and len(ids) > 1 and ids[-1] == eos:
            ids.pop()  # a post-processor that appends EOS would end the prompt before the answer
        return ids

    def encode_response_only(self, response: str, max_length: int | None = None) -> Encoded:
        """The response scored alone (IFD's question-free pass): the tokenizer's BOS if it adds one,
        then the response tokens (and whatever the tokenizer appends, outside the response range)."""
        ids, offs = self._tokenize(response, special=True)
        return select_response_tokens(ids, offs, (0, len(response)), 0, max_length=max_length)

    # -- generation support -------------------------------------------------------------------------
    @property
    def stop_token_ids(self) -> list[int]:
        """Token ids that end the assistant's turn: EOS, the generation config's EOS ids, the token the
        template puts right after a response, and known end-of-turn tokens in the vocabulary."""
        if self._stop_ids is None:
            ids: list[int] = []

            def add(x: Any) -> None:
                if x is None:
                    return
                for i in x if isinstance(x, (list, tuple)) else [x]:
                    if isinstance(i, int) and i >= 0 and i not in ids:
                        ids.append(i)

            add(self.tokenizer.eos_token_id)
            gen_cfg = getattr(self.model, "generation_config", None)
            add(getattr(gen_cfg, "eos_token_id", None))
            if self.has_chat_template:
                try:
                    enc = self.encode(({"role": "user", "content": "hi"},), "ok")
                    if enc.response_end < len(enc.input_ids):
                        nxt = enc.input_ids[enc.response_end]
                        if nxt in set(self.tokenizer.all_special_ids) or nxt in self.tokenizer.added_tokens_decoder:
                            add(nxt)
                except ValueError:
                    pass  # a template that cannot render this probe still stops at EOS
            vocab = self.tokenizer.get_vocab()
            for tok in _KNOWN_END_OF_TURN:
                if tok in vocab and tok in {str(t) for t in self.tokenizer.added_tokens_decoder.values()}:
                    add(vocab[tok])
            self._stop_ids = ids
        return list(self._stop_ids)
