"""The chunked statistics core equals a naive full-softmax computation."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import Gemma2Config, Gemma2ForCausalLM, LlamaConfig, LlamaForCausalLM

from dmc.stats.core import Span, UnsupportedModelError, checked_split, plan_batches, score_batch, stats_from_logits


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread, and the CPU is shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TOL = 1e-4


def tiny_llama(vocab: int = 500, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    return LlamaForCausalLM(cfg).eval()


def random_spans(vocab: int, lengths: list[int], seed: int = 1) -> list[Span]:
    g = torch.Generator().manual_seed(seed)
    spans = []
    for i, n in enumerate(lengths):
        ids = torch.randint(0, vocab, (n,), generator=g).tolist()
        start = 1 + (i * 7) % (n - 1)  # varied prompt lengths, always >= 1 response token
        end = n - (i % 3 == 0 and n - start > 2)  # some spans leave a trailing template token
        spans.append(Span(ids, start, end))
    return spans


def naive(model, span: Span):
    """Batch 1, full logits, float64 log-softmax: how per-sample scripts compute it."""
    with torch.no_grad():
        logits = model(torch.tensor([list(span.input_ids)])).logits[0].double()
    pos = torch.arange(span.start - 1, span.end - 1)
    tgt = torch.tensor(list(span.input_ids[span.start:span.end]))
    lsm = logits.log_softmax(-1)[pos]
    true = logits[pos, tgt]
    lp = lsm[torch.arange(len(pos)), tgt]
    ent = -(lsm.exp() * lsm).sum(-1)
    # Rank bracket: the ranks consistent with the true logit moved by +-TOL (float noise).
    lo = (logits[pos] > true[:, None] + TOL).sum(-1) + 1
    hi = (logits[pos] > true[:, None] - TOL).sum(-1) + 1
    exact = (logits[pos] > true[:, None]).sum(-1) + 1
    return lp, ent, lo, hi, exact


def test_stats_from_logits_ties_and_values():
    logits = torch.tensor([[1.0, 2.0, 2.0, 0.0], [5.0, 5.0, 5.0, 5.0], [0.5, -1.0, 3.0, 3.0]])
    targets = torch.tensor([1, 3, 0])
    lp, rank, ent = stats_from_logits(logits, targets)
    # Ties count in the token's favour: rank = 1 + #strictly greater.
    assert rank.tolist() == [1, 1, 3]
    ref = logits.double().log_softmax(-1)
    assert torch.allclose(lp.double(), ref[torch.arange(3), targets], atol=1e-6)
    assert torch.allclose(ent.double(), -(ref.exp() * ref).sum(-1), atol=1e-6)
    assert ent[1].item() == pytest.approx(math.log(4), abs=1e-6)


def test_stats_from_logits_masked_vocabulary():
    logits = torch.tensor([[0.0, float("-inf"), 1.0, float("-inf")]])
    lp, rank, ent = stats_from_logits(logits, torch.tensor([0]))
    p = torch.softmax(torch.tensor([0.0, 1.0], dtype=torch.float64), -1)
    assert rank.item() == 2
    assert lp.item() == pytest.approx(math.log(p[0].item()), abs=1e-6)
    assert ent.item() == pytest.approx(-(p * p.log()).sum().item(), abs=1e-6)
    lp2, rank2, _ = stats_from_logits(logits, torch.tensor([1]))
    assert lp2.item() == float("-inf") and rank2.item() == 3


@pytest.mark.parametrize("vocab,chunk_elements", [(500, 500 * 7), (50_000, 50_000 * 64)])
def test_score_batch_equals_naive_full_softmax(vocab, chunk_elements):
    model = tiny_llama(vocab)
    lengths = [40, 17, 63, 9, 25, 40] if vocab < 10_000 else [30, 12, 21]
    spans = random_spans(vocab, lengths)
    got = score_batch(model, spans, chunk_elements=chunk_elements)  # several chunks, spans cross chunk edges
    n_exact = n_total = 0
    for span, st in zip(spans, got):
        lp, ent, lo, hi, exact = naive(model, span)
        n = span.end - span.start
        assert len(st.logprob) == len(st.rank) == len(st.entropy) == len(st.token_ids) == n
        assert st.token_ids.tolist() == list(span.input_ids[span.start:span.end])
        assert torch.allclose(torch.from_numpy(st.logprob).double(), lp, atol=TOL, rtol=0)
        assert torch.allclose(torch.from_numpy(st.entropy).double(), ent, atol=TOL, rtol=0)
        r = torch.from_numpy(st.rank).long()
        assert bool(((lo <= r) & (r <= hi)).all()), "rank outside the float-tolerance bracket"
        n_exact += int((r == exact).sum())
        n_total += n
    assert n_exact == n_total  # tiny random models have no near-ties at this scale
    assert min(int(st.rank.min()) for st in got) >= 1
    assert max(int(st.rank.max()) for st in got) <= vocab


def test_no_full_logits_tensor_is_built():
    vocab, chunk_elements = 2_000, 2_000 * 16
    model = tiny_llama(vocab)
    checked_split(model)  # the one-time probe forward is not part of scoring
    shapes = []
    hook = model.lm_head.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    try:
        score_batch(model, random_spans(vocab, [50, 50, 50, 50]), chunk_elements=chunk_elements)
    finally:
        hook.remove()
    # Every head call is on 2-D [rows, vocab] chunks of at most 16 rows, never [batch, seq, vocab].
    assert shapes and all(len(s) == 2 and s[0] <= 16 and s[1] == vocab for s in shapes)
    n_scored = sum(sp.end - sp.start for sp in random_spans(vocab, [50, 50, 50, 50]))
    assert sum(s[0] for s in shapes) == n_scored  # only response rows went through the head


def test_batched_equals_one_at_a_time():
    model = tiny_llama(300)
    spans = random_spans(300, [30, 8, 22, 15])
    together = score_batch(model, spans)
    for span, st in zip(spans, together):
        alone = score_batch(model, [span])[0]
        assert abs(alone.logprob - st.logprob).max() < TOL
        assert (alone.rank == st.rank).all()


def test_softcapped_model_matches_its_own_logits():
    torch.manual_seed(0)
    cfg = Gemma2Config(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=8, final_logit_softcapping=0.5,
                       max_position_embeddings=128)
    model = Gemma2ForCausalLM(cfg).eval()
    spans = random_spans(300, [20, 14])
    for span, st in zip(spans, score_batch(model, spans)):
        lp, ent, lo, hi, _ = naive(model, span)
        assert torch.allclose(torch.from_numpy(st.logprob).double(), lp, atol=TOL)
        assert torch.allclose(torch.from_numpy(st.entropy).double(), ent, atol=TOL)


class ScaledLlama(LlamaForCausalLM):
    """Applies a logit transform its config does not declare."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        out.logits = out.logits * 3.0
        return out


def test_undeclared_logit_transform_is_refused():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=2)
    with pytest.raises(UnsupportedModelError, match="ScaledLlama"):
        checked_split(ScaledLlama(cfg).eval())


def test_span_rejects_unscorable_first_token():
    with pytest.raises(ValueError, match="start"):
        Span([1, 2, 3], 0, 3)


def test_plan_batches_budget_and_coverage():
    lengths = [10, 50, 30, 30, 5, 200, 45, 12]
    batches = plan_batches(lengths, batch_tokens=100)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)  # longest first
    for b in batches:
        width = max(lengths[i] for i in b)
        assert len(b) * width <= 100 or len(b) == 1
    assert [5] in batches  # the 200-token sequence exceeds the budget and goes alone
    assert len(batches) == 4  # [200], [50,45], [30,30,12], [10,5] ... greedy packing


def test_training_mode_model_is_scored_without_dropout():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=200, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, attention_dropout=0.5)
    model = LlamaForCausalLM(cfg).eval()
    spans = random_spans(200, [20, 12])
    ref = score_batch(model, spans)
    model.train()
    got = score_batch(model, spans)
    assert model.training  # the caller's mode is restored
    for a, b in zip(ref, got):
        assert abs(a.logprob - b.logprob).max() < 1e-6 and (a.rank == b.rank).all()
