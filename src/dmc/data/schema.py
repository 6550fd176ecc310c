"""The data model (DESIGN.md §2): a sample is one teacher trace for one question."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from dmc.io import content_hash

Message = dict[str, str]  # {"role": ..., "content": ...}


@dataclass(frozen=True)
class Sample:
    """One teacher trace.

    `prompt` is the chat that precedes the trace (every turn before the last assistant turn:
    system prompt, user turns, earlier assistant/tool turns; at least one user turn; for a plain
    question, one user turn), `response` the teacher's full trace (the last assistant turn; its
    reasoning, when there is any, in a leading `<think>...</think>` block, see
    `dmc.data.reasoning`), `gold` the reference answer when known.
    """

    id: str
    prompt: tuple[Message, ...]
    response: str
    gold: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    dataset: str = ""

    @property
    def question(self) -> str:
        """Text of the last user turn (the question the trace answers)."""
        for m in reversed(self.prompt):
            if m["role"] == "user":
                return m["content"]
        return self.prompt[-1]["content"] if self.prompt else ""

    # The two hashes are computed once per sample (a Sample is a value: its fields never change).
    @cached_property
    def question_hash(self) -> str:
        """Identifies the question (prompt + gold): shared by traces of several teachers."""
        return content_hash({"prompt": list(self.prompt), "gold": self.gold})

    @cached_property
    def hash(self) -> str:
        """Identifies the sample's content: prompt, response and gold (not id or meta)."""
        return content_hash({"prompt": list(self.prompt), "response": self.response, "gold": self.gold})

    def messages(self) -> list[Message]:
        """The full conversation in the chat `messages` shape read by TRL's SFTTrainer."""
        return [*map(dict, self.prompt), {"role": "assistant", "content": self.response}]

    def to_record(self) -> dict[str, Any]:
        """A JSON-serializable row in DESIGN.md §2's schema."""
        rec: dict[str, Any] = {"id": self.id}
        if len(self.prompt) == 1 and self.prompt[0]["role"] == "user":
            rec["question"] = self.prompt[0]["content"]
            rec["response"] = self.response
        else:
            rec["messages"] = self.messages()
        rec["gold"] = self.gold
        rec["meta"] = self.meta
        return rec


@dataclass
class CandidateDataset:
    """A named collection of samples (one teacher style or source)."""

    name: str
    samples: list[Sample]
    source: str = ""
    n_rejected: int = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self):
        return iter(self.samples)


@dataclass(frozen=True)
class EvalItem:
    """One eval question with its gold answer."""

    id: str
    prompt: tuple[Message, ...]
    gold: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def question(self) -> str:
        """Text of the last user turn (as `Sample.question`)."""
        for m in reversed(self.prompt):
            if m["role"] == "user":
                return m["content"]
        return self.prompt[-1]["content"] if self.prompt else ""

    @cached_property
    def question_hash(self) -> str:
        """Same formula as `Sample.question_hash`: an eval question and a trace's question match."""
        return content_hash({"prompt": list(self.prompt), "gold": self.gold})
