"""The numerical core: per-token log-probability, rank and entropy without full logits.

The student's decoder runs once over a right-padded batch; only the hidden states at response
positions are kept (position p predicts token p+1), and the output head is applied to chunks of
those rows. Each chunk's float32 logits are reduced to three numbers per token and freed, so no
[batch x seq x vocab] tensor ever exists: peak extra memory is about 4 x chunk_elements x 4
bytes (logits, shifted logits, their exponentials, a comparison mask), whatever the batch.

Directions and ranges, per response token t:
  logprob  ℓ_t = log p(y_t | y_<t, x), natural log, in (-inf, 0]; higher = more expected.
  rank     ρ_t = 1 + #{v : logit_v > logit_{y_t}}, in [1, vocab]; 1 = the student's argmax.
           Ties count in the true token's favour: a token tied with others for the top logit has
           rank 1.
  entropy  H_t = -Σ_v p_v log p_v in nats, in [0, log vocab]; higher = less certain.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

HeadFn = Callable[[torch.Tensor], torch.Tensor]


class UnsupportedModelError(RuntimeError):
    """The model's logits cannot be reproduced from its decoder and output head."""


@dataclass(frozen=True)
class Span:
    """One sequence to score: the tokens input_ids[start:end] are scored (start >= 1).
    input_ids is any int sequence (a list or a numpy array)."""

    input_ids: Sequence[int]
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 1 <= self.start <= self.end <= len(self.input_ids):
            raise ValueError(
                f"Span needs 1 <= start <= end <= len(input_ids); got start={self.start}, "
                f"end={self.end}, len={len(self.input_ids)} (a scored token needs a token before it)")


@dataclass
class SpanStats:
    """Statistics of one span's tokens, as numpy arrays of equal length."""

    token_ids: np.ndarray  # int32
    logprob: np.ndarray  # float32
    rank: np.ndarray  # int32
    entropy: np.ndarray  # float32


# ---------------------------------------------------------------------------------------------
# Per-chunk reductions


def stats_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logprob, rank, entropy) of `targets` under float32 `logits` [rows, vocab].

    With z = logits - max, e = exp(z), s = Σ e:  logprob = z_t - log s, entropy = log s - Σ e·z / s.
    Both entropy terms are >= 0 (z <= 0), so nothing cancels: entropy is accurate to float32
    rounding even for confident predictions with large logits. The rank compares the logits
    themselves (not z), so it equals the naive count exactly.
    """
    true = logits.gather(1, targets.unsqueeze(1))  # [c, 1]
    rank = (logits > true).sum(1, dtype=torch.int32) + 1
    m = logits.amax(1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # an all -inf row keeps exp finite
    z = logits - m
    e = z.exp()
    s = e.sum(1)
    log_s = s.log()
    entropy = log_s - torch.linalg.vecdot(e, z) / s
    bad = torch.isnan(entropy)
    if bad.any():
        # 0 * -inf from masked vocabulary entries: recompute those rows with -Σ p log p, 0 log 0 = 0.
        p = torch.softmax(logits[bad], dim=1)
        entropy[bad] = torch.special.entr(p).sum(1)
    return (true - m).squeeze(1) - log_s, rank, entropy


# ---------------------------------------------------------------------------------------------
# Model plumbing


def _logit_transform(config) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The post-head logit transform a model's config declares, if any."""
    cap = getattr(config, "final_logit_softcapping", None)
    scale = getattr(config, "logit_scale", None)  # Cohere: logits * scale
    divide = getattr(config, "logits_scaling", None)  # Granite: logits / scaling
    steps: list[Callable[[torch.Tensor], torch.Tensor]] = []
    if scale is not None and scale != 1:
        steps.append(lambda x, s=float(scale): x * s)
    if divide is not None and divide != 1:
        steps.append(lambda x, d=float(divide): x / d)
    if cap:
        steps.append(lambda x, c=float(cap): torch.tanh(x / c) * c)
    if not steps:
        return None

    def apply(x: torch.Tensor) -> torch.Tensor:
        for f in steps:
            x = f(x)
        return x

    return apply


def split_model(model: nn.Module) -> tuple[nn.Module, HeadFn]:
    """The model's decoder (token ids -> final hidden states) and a head (hidden -> float32 logits)."""
    try:
        decoder = model.get_decoder()
    except (AttributeError, ValueError, NotImplementedError):
        decoder = None
    if decoder is None or decoder is model:
        decoder = getattr(model, "model", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(decoder, nn.Module) or not isinstance(head, nn.Module):
        raise UnsupportedModelError(
            f"{type(model).__name__}: cannot find its decoder and output head "
            "(expected get_decoder() and get_output_embeddings(), as transformers causal LMs have)")
    transform = _logit_transform(getattr(model, "config", None))

    def head_fn(h: torch.Tensor) -> torch.Tensor:
        logits = head(h)
        if transform is not None:
            logits = transform(logits)
        return logits.float()

    return decoder, head_fn


def decoder_hidden(decoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Final hidden states [batch, seq, hidden] (after the last norm)."""
    out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


@dataclass(frozen=True)
class CheckedModel:
    """A model split into decoder and head, verified to reproduce its own logits."""

    decoder: nn.Module
    head_fn: HeadFn
    vocab: int


_VERIFIED: "weakref.WeakKeyDictionary[nn.Module, CheckedModel]" = weakref.WeakKeyDictionary()


def checked_split(model: nn.Module) -> CheckedModel:
    """`split_model`, verified once per model against its own full forward on a short probe.

    Raises UnsupportedModelError when head(decoder(x)) does not reproduce model(x).logits, e.g. a
    model that transforms its logits in a way the config does not declare.
    """
    if model in _VERIFIED:
        return _VERIFIED[model]
    decoder, head_fn = split_model(model)
    device = next(model.parameters()).device
    with torch.inference_mode():
        vocab = head_fn(torch.zeros(1, _hidden_size(model), dtype=_dtype(model), device=device)).shape[-1]
    probe = (torch.arange(8, device=device) * 7919 % vocab).unsqueeze(0)
    mask = torch.ones_like(probe)
    with torch.inference_mode():
        ref = model(input_ids=probe, attention_mask=mask, use_cache=False).logits.float()
        got = head_fn(decoder_hidden(decoder, probe, mask))
    scale = max(1.0, float(ref.abs().max()))
    tol = (1e-3 if _dtype(model) == torch.float32 else 3e-2) * scale
    diff = float((ref - got).abs().max()) if ref.shape == got.shape else float("inf")
    if not diff <= tol:
        raise UnsupportedModelError(
            f"{type(model).__name__}: logits from its decoder + output head differ from its forward() "
            f"by {diff:.3g} (tolerance {tol:.3g}); it applies a logit transform the statistics engine "
            "does not know, so chunked statistics would be wrong")
    checked = CheckedModel(decoder, head_fn, int(vocab))
    _VERIFIED[model] = checked
    return checked


def _dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def _hidden_size(model: nn.Module) -> int:
    head = model.get_output_embeddings()
    if isinstance(head, nn.Linear):
        return head.in_features
    return int(model.config.hidden_size)


# ---------------------------------------------------------------------------------------------
# Batches


def default_chunk_elements(device: torch.device) -> int:
    """Logits per chunk: on CPU 2^22 (16 MiB; large enough to amortize reading the head's weights,
    small enough to stay mostly in cache), on accelerators 2^26 (256 MiB; fewer kernel launches)."""
    return 1 << 22 if device.type == "cpu" else 1 << 26


def score_batch(model: nn.Module, spans: Sequence[Span], *, chunk_elements: int | None = None,
                pad_id: int = 0) -> list[SpanStats]:
    """Token statistics for each span, from one right-padded forward pass over all of them.

    chunk_elements bounds the float32 logits alive at once (rows x vocab); None picks
    `default_chunk_elements` for the model's device.
    """
    if not spans:
        return []
    cm = checked_split(model)
    device = next(model.parameters()).device
    chunk = max(1, (chunk_elements or default_chunk_elements(device)) // cm.vocab)
    width = max(len(s.input_ids) for s in spans)
    ids = torch.full((len(spans), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(spans), width), dtype=torch.long)
    rows, cols = [], []
    for b, s in enumerate(spans):
        n = len(s.input_ids)
        ids[b, :n] = torch.as_tensor(np.asarray(s.input_ids, dtype=np.int64))
        mask[b, :n] = 1
        cols.append(torch.arange(s.start - 1, s.end - 1))  # predicting positions
        rows.append(torch.full((s.end - s.start,), b, dtype=torch.long))
    row_idx, col_idx = torch.cat(rows), torch.cat(cols)
    targets_all = ids[row_idx, col_idx + 1]
    ids, mask = ids.to(device), mask.to(device)

    was_training = model.training
    model.eval()  # dropout off: a model scored mid-training gives its deterministic statistics
    try:
        with torch.inference_mode():
            hidden = decoder_hidden(cm.decoder, ids, mask)
            picked = hidden[row_idx.to(device), col_idx.to(device)]  # [N, hidden]
            del hidden
            n_rows = picked.shape[0]
            targets_dev = targets_all.to(device)
            # Results stay on the device until the end: no host sync per chunk.
            parts = [stats_from_logits(cm.head_fn(picked[a:a + chunk]), targets_dev[a:a + chunk])
                     for a in range(0, n_rows, chunk)]
            if parts:
                lp, rk, en = (torch.cat(x).cpu() for x in zip(*parts))
            else:
                lp, rk, en = torch.empty(0), torch.empty(0, dtype=torch.int32), torch.empty(0)
    finally:
        model.train(was_training)
    nan = torch.isnan(lp)
    if nan.any():
        bad = int(torch.nonzero(nan)[0])
        raise FloatingPointError(
            f"NaN logits for span {int(row_idx[bad])} at position {int(col_idx[bad])}: the model produced NaN")

    out: list[SpanStats] = []
    offset = 0
    for s in spans:
        n = s.end - s.start
        sl = slice(offset, offset + n)
        out.append(SpanStats(
            token_ids=np.asarray(s.input_ids[s.start:s.end], dtype=np.int32),
            logprob=lp[sl].numpy().copy(),
            rank=rk[sl].numpy().astype(np.int32, copy=True),
            entropy=en[sl].numpy().copy(),
        ))
        offset += n
    return out


def plan_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Length-bucketed batches: indices sorted by length (longest first), each batch's padded
    size (count x longest) within batch_tokens; a sequence longer than the budget goes alone."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        width = lengths[cur[0]] if cur else lengths[i]  # longest first: the first sets the width
        if cur and (len(cur) + 1) * width > batch_tokens:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches
