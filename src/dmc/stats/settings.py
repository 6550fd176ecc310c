"""Settings of the statistics engine, and the key that caches its tables.

Only the fields declared ``result=True`` enter the key (dmc.settings.settings_key); throughput
knobs (batch sizes, chunk sizes) do not, so a run resumed with other batch sizes reuses finished
work.
"""

from __future__ import annotations

from dataclasses import dataclass

from dmc.settings import SEED, VERIFIER, check, settings_key, setting, to_dict
from dmc.students.vllm_engine import ENGINE

# Bump when a change to the engine changes what it writes: old cache entries then stop matching.
ENGINE_VERSION = "1"


@dataclass(frozen=True)
class TokenStatsSettings:
    """How token statistics are computed (one teacher-forced pass of the student per trace)."""

    max_length: int | None = setting(None, "Max tokens of prompt + response when scoring (default: the student's "
                                     "context length); a longer trace is cut, counted per dataset and its "
                                     "alignment is NaN (truncated).", flag="--score-max-length", min=2)
    batch_tokens: int = setting(8192, "Padded tokens per scoring batch (length-bucketed).", result=False, min=1)
    chunk_elements: int | None = setting(None, "At most this many float32 logits (rows x vocab) at once "
                                         "(default: per device).", result=False, min=1)
    with_ifd: bool = setting(False, "Also score each response without its question (for IFD).", flag="--ifd")
    turns: str = setting("last", "Assistant turns scored: last (the response) or all (every assistant turn of the "
                         "conversation, as RSR's reference does).", choices=("last", "all"), flag="--score-turns")
    engine: str = ENGINE.field()

    def __post_init__(self) -> None:
        check(self)

    @property
    def settings_hash(self) -> str:
        """The cache key of the tokens table under these settings."""
        return settings_key("tokens", ENGINE_VERSION, self)


@dataclass(frozen=True)
class AttemptSettings:
    """How the student's own attempts at each question are sampled and graded (its capability)."""

    k: int = setting(1, "Student attempts per question (capability).", flag="--attempt-k", min=1)
    temperature: float = setting(0.0, "Sampling temperature of attempts; 0 = greedy.", flag="--attempt-temperature",
                                 min=0.0)
    top_p: float = setting(1.0, "Nucleus mass of sampled attempts, in (0, 1].", flag="--attempt-top-p", min=1e-9,
                           max=1.0)
    max_new_tokens: int = setting(256, "Generation budget per attempt (an attempt that hits it without EOS is "
                                  "truncated).", flag="--attempt-max-new-tokens", min=1)
    seed: int = SEED.field()
    batch_size: int = setting(16, "Sequences per generation batch.", flag="--attempt-batch-size", result=False,
                              min=1)
    verifier: str = VERIFIER.field()
    engine: str = ENGINE.field()

    def __post_init__(self) -> None:
        check(self)

    @property
    def settings_hash(self) -> str:
        """The cache key of the attempts table under these settings."""
        return settings_key("attempts", ENGINE_VERSION, self)


def settings_dict(settings: TokenStatsSettings | AttemptSettings) -> dict:
    """All fields, for logs and manifests."""
    return to_dict(settings)
