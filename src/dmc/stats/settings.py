"""Settings of the statistics engine and the hash that keys its cache.

Only fields that change results enter `settings_hash`; throughput knobs (batch sizes, chunk
sizes) do not, so a run resumed with other batch sizes reuses finished work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from dmc.data.schema import content_hash

# Bump when a change to the engine changes what it writes: old cache entries then stop matching.
ENGINE_VERSION = "1"


def _check_positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{type(obj).__name__}.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class TokenStatsSettings:
    """How token statistics are computed.

    max_length: tokens of the templated (prompt, response); longer responses are cut and flagged
        `truncated` (never silently).
    batch_tokens: padded tokens per forward batch (length-bucketed); throughput only.
    chunk_elements: at most this many float32 logits (rows x vocab) exist at once; None picks a
        per-device default (dmc.stats.core.default_chunk_elements); throughput and memory only.
    with_ifd: also score each response without its question (`logprob_noq`, for IFD).
    """

    max_length: int = 1024
    batch_tokens: int = 8192
    chunk_elements: int | None = None
    with_ifd: bool = False

    _RESULT_FIELDS = ("max_length", "with_ifd")

    def __post_init__(self) -> None:
        _check_positive(self, "max_length", "batch_tokens")
        if self.chunk_elements is not None:
            _check_positive(self, "chunk_elements")
        if self.max_length < 2:
            raise ValueError(f"TokenStatsSettings.max_length must be >= 2, got {self.max_length}")

    @property
    def settings_hash(self) -> str:
        """Stable hash of the result-changing fields and the engine version."""
        return content_hash({"table": "tokens", "engine": ENGINE_VERSION,
                             **{k: getattr(self, k) for k in self._RESULT_FIELDS}})


@dataclass(frozen=True)
class AttemptSettings:
    """How the student's own attempts at each question are sampled and graded.

    k: attempts per question. temperature: 0.0 means greedy decoding. top_p: nucleus mass.
    max_new_tokens: generation budget (an attempt that hits it without EOS is `truncated`).
    seed: sampling seed. batch_size: sequences per generation batch (a batch holds
        batch_size // k questions when sampling, batch_size when greedy; throughput only).
    verifier: the dmc.grading verifier name ("auto" picks per question).
    """

    k: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    batch_size: int = 16
    verifier: str = "auto"

    def __post_init__(self) -> None:
        _check_positive(self, "k", "max_new_tokens", "batch_size")
        if not self.temperature >= 0.0:
            raise ValueError(f"AttemptSettings.temperature must be >= 0, got {self.temperature!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"AttemptSettings.top_p must be in (0, 1], got {self.top_p!r}")

    @property
    def settings_hash(self) -> str:
        """Stable hash of every field but batch_size, plus the engine version."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "batch_size"}
        d["temperature"] = float(d["temperature"])
        d["top_p"] = float(d["top_p"])
        return content_hash({"table": "attempts", "engine": ENGINE_VERSION, **d})


def settings_dict(settings: TokenStatsSettings | AttemptSettings) -> dict:
    """All fields, for logs and manifests."""
    return asdict(settings)
