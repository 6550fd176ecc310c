"""Batched generation: batched greedy == one-by-one greedy, seeded sampling, stopping, surprisal."""

from __future__ import annotations

import math

import pytest
import torch

from dmc.students import generate, tiny_student

PROMPTS = [
    ({"role": "user", "content": "What is 1 + 2?"},),
    ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Add 12 and 35, then tell me the sum."}),
    ({"role": "user", "content": "hi"},),
    ({"role": "user", "content": "Compute 7 * 8 - 6 step by step, please."},),
]


def peaked(template: str):
    # Larger init std: peaked, varied next-token distributions (the default gives near-uniform
    # ones and degenerate repeats, which would make equality tests weak).
    return tiny_student(template, init_std=0.3)


@pytest.mark.parametrize("template", ["chatml", "none"])
def test_batched_greedy_equals_unbatched(template):
    s = peaked(template)
    batched = generate(s, PROMPTS, max_new_tokens=12, batch_size=4)
    single = [generate(s, [p], max_new_tokens=12, batch_size=1)[0] for p in PROMPTS]
    assert len(batched) == len(PROMPTS) and all(len(g) == 1 for g in batched)
    for b, u in zip(batched, single):
        assert b[0].token_ids == u[0].token_ids
        assert b[0].text == u[0].text
        assert b[0].truncated == u[0].truncated
        assert b[0].mean_surprisal == pytest.approx(u[0].mean_surprisal, abs=1e-4)
    # Not a degenerate model: different prompts give different continuations.
    assert len({tuple(g[0].token_ids) for g in batched}) == len(PROMPTS)


def test_greedy_k_repeats_one_answer():
    s = peaked("chatml")
    out = generate(s, PROMPTS[:2], k=3, max_new_tokens=6)
    assert [len(g) for g in out] == [3, 3]
    for g in out:
        assert g[0] == g[1] == g[2]


def test_sampling_is_seeded_and_independent_of_history():
    s = peaked("chatml")
    kw = dict(k=3, temperature=1.0, top_p=0.95, max_new_tokens=8, batch_size=6)
    a = generate(s, PROMPTS, seed=5, **kw)
    torch.manual_seed(123)
    generate(s, PROMPTS[::-1], seed=9, **kw)  # unrelated work in between
    b = generate(s, PROMPTS, seed=5, **kw)
    assert a == b
    c = generate(s, PROMPTS, seed=6, **kw)
    assert c != a
    # Samples differ within a prompt (k draws), unlike greedy.
    assert any(len({tuple(x.token_ids) for x in g}) > 1 for g in a)


def test_global_rng_untouched():
    s = peaked("chatml")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    generate(s, PROMPTS[:2], k=2, temperature=0.8, max_new_tokens=4)
    assert torch.equal(torch.rand(3), expected)


def _teacher_forced_surprisal(s, prompt, token_ids) -> float:
    ids = s.encode_prompt(prompt)
    full = torch.tensor([ids + token_ids])
    with torch.no_grad():
        logits = s.model(full).logits[0].float()
    logp = torch.log_softmax(logits[len(ids) - 1 : -1], dim=-1)
    picked = logp.gather(1, torch.tensor(token_ids)[:, None]).squeeze(1)
    return float(-picked.double().mean())


@pytest.mark.parametrize("temperature", [0.0, 0.5])
def test_mean_surprisal_matches_teacher_forcing(temperature):
    s = peaked("chatml")
    out = generate(s, PROMPTS, k=2, temperature=temperature, max_new_tokens=10, batch_size=8, seed=1)
    for p, gens in zip(PROMPTS, out):
        for g in gens:
            assert g.mean_surprisal == pytest.approx(_teacher_forced_surprisal(s, p, g.token_ids), abs=1e-4)
            assert g.truncated == (len(g.token_ids) == 10 and g.token_ids[-1] not in s.stop_token_ids)


class _PromoteAfter:
    """lm_head forward hook: from the n-th forward call on, token `tid` dominates the logits."""

    def __init__(self, tid: int, n: int) -> None:
        self.tid, self.n, self.calls = tid, n, 0

    def __call__(self, module, inputs, output):
        self.calls += 1
        if self.calls >= self.n:
            output = output.clone()
            output[..., self.tid] += 1e4
        return output


@pytest.mark.parametrize("template,stop", [("chatml", "<|im_end|>"), ("llama3", "<|eot_id|>"), ("none", "<|end_of_text|>")])
def test_stops_at_end_of_turn(template, stop):
    s = peaked(template)
    tid = s.tokenizer.convert_tokens_to_ids(stop)
    hook = s.model.lm_head.register_forward_hook(_PromoteAfter(tid, 3))
    try:
        out = generate(s, PROMPTS[:3], max_new_tokens=20, batch_size=3)
    finally:
        hook.remove()
    for (g,) in out:
        assert len(g.token_ids) == 3 and g.token_ids[-1] == tid
        assert not g.truncated
        assert stop not in g.text
        assert math.isfinite(g.mean_surprisal)
    # Without the hook nothing stops within 5 tokens: truncated is reported.
    (g,) = generate(s, PROMPTS[:1], max_new_tokens=5)[0]
    assert g.truncated and len(g.token_ids) == 5


def test_plain_text_drops_the_separator_space():
    s = peaked("none")
    for (g,) in generate(s, PROMPTS, max_new_tokens=8):
        body = g.token_ids if g.truncated else g.token_ids[:-1]
        decoded = s.tokenizer.decode(body, skip_special_tokens=True)
        assert g.text == (decoded[1:] if decoded.startswith(" ") else decoded)


def test_bad_arguments():
    s = tiny_student("chatml")
    assert generate(s, []) == []
    for kw in ({"k": 0}, {"temperature": -1.0}, {"top_p": 0.0}, {"max_new_tokens": 0}, {"batch_size": 0}):
        with pytest.raises(ValueError):
            generate(s, PROMPTS[:1], **kw)
    with pytest.raises(ValueError, match="prompt 1"):
        generate(s, [PROMPTS[0], ()])
