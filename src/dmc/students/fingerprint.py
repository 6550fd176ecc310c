"""Student fingerprint: a short id that changes whenever what the student computes can change.

It keys every cached statistic, so it must change with the weights, the tokenizer (vocabulary,
merges, special tokens), the chat template, the architecture config and the masking/encoding
convention, and it must be cheap for a multi-GB model: each tensor contributes its name, shape,
dtype, the exact values of a strided sample (with their sum and sum of squares in float64) and the
float64 sum of the whole tensor, computed in chunks so no full float64 copy is made. It is one
memory pass over the weights, with no hashing of all their bytes.
"""

from __future__ import annotations

import hashlib
import json
import struct

import torch

# Bump when the encoding/masking convention changes, so caches keyed by the fingerprint are redone.
ENCODING_VERSION = "1"

_SAMPLE = 1024  # elements of the strided sample per tensor
_CHUNK = 1 << 20  # elements per float64 chunk of the full-tensor sum

# Config keys that vary between loads of the same weights (paths, versions, runtime switches).
_VOLATILE_CONFIG_KEYS = {
    "transformers_version",
    "name_or_path",
    "dtype",
    "torch_dtype",
    "use_cache",
    "output_hidden_states",
    "output_attentions",
    "return_dict",
}


def _tensor_digest(h: "hashlib._Hash", name: str, t: torch.Tensor) -> None:
    t = t.detach()
    h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
    if t.numel() == 0 or t.device.type == "meta":
        return
    flat = t.reshape(-1)
    n = flat.numel()
    stride = max(1, n // _SAMPLE)
    sample = flat[::stride][:_SAMPLE].to(torch.float64)
    total = 0.0
    for i in range(0, n, _CHUNK):
        total += float(flat[i : i + _CHUNK].to(torch.float64).sum())
    h.update(sample.cpu().numpy().tobytes())
    h.update(struct.pack("<ddd", float(sample.sum()), float((sample * sample).sum()), total))


def _config_digest(h: "hashlib._Hash", model) -> None:
    config = getattr(model, "config", None)
    if config is None:
        h.update(b"config:none")
        return
    d = {k: v for k, v in config.to_dict().items() if not k.startswith("_") and k not in _VOLATILE_CONFIG_KEYS}
    h.update(json.dumps(d, sort_keys=True, default=str).encode())


def tokenizer_digest(tokenizer) -> str:
    """sha256 hex of the tokenizer's vocabulary/merges/normalization/special tokens and chat template."""
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TypeError(f"{type(tokenizer).__name__} is not a fast (tokenizers-backed) tokenizer")
    text = backend.to_str()
    # Padding/truncation are per-call runtime state of the backend, not part of the tokenizer. The
    # serialization's top-level keys come in a fixed order (version, truncation, padding,
    # added_tokens, ...), so everything from "added_tokens" on is the tokenizer itself; slicing
    # there avoids parsing and re-dumping a vocabulary of 100k+ entries.
    cut = text.find(',"added_tokens":')
    if text.startswith('{"version":') and cut > 0:
        h.update(text[: text.index(",")].encode())
        h.update(text[cut:].encode())
    else:
        spec = json.loads(text)
        spec.pop("padding", None)
        spec.pop("truncation", None)
        h.update(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode())
    template = getattr(tokenizer, "chat_template", None)
    h.update(json.dumps(template, sort_keys=True).encode())
    named = {k: str(getattr(tokenizer, k, None)) for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    h.update(json.dumps(named, sort_keys=True).encode())
    return h.hexdigest()


def student_fingerprint(model, tokenizer) -> str:
    """16 hex chars identifying (weights, architecture config, tokenizer, chat template, encoding)."""
    h = hashlib.sha256()
    h.update(f"dmc-student-fingerprint|enc{ENCODING_VERSION}|".encode())
    with torch.no_grad():
        for name, p in model.named_parameters(remove_duplicate=False):
            _tensor_digest(h, "p:" + name, p)
        for name, b in model.named_buffers(remove_duplicate=False):
            _tensor_digest(h, "b:" + name, b)
    _config_digest(h, model)
    h.update(tokenizer_digest(tokenizer).encode())
    return h.hexdigest()[:16]
