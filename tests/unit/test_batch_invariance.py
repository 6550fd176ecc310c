"""A sample's statistics do not depend on the batch it is scored in.

Scored alone, in a batch with others of different lengths (so with padding), or in another order,
a sample gets the same log-probabilities and entropies within TOL and the same ranks away from
exact ties, in the dtype the project loads students in by default ("auto"). This is what lets
backends that batch differently (a resumed run, Ray workers, another batch size) share one cache.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dmc.data.schema import Sample
from dmc.stats import Span, TokenStatsSettings, compute_token_stats, score_batch
from dmc.students import load_student
from dmc.students.loading import resolve_dtype
from dmc.students.tiny import tiny_student

# float32 through a padded batch vs alone: reductions are reordered, not truncated.
TOL = 1e-4
# Ranks are compared where no other logit lies within this of the true token's (a near-tie may
# flip with float32 rounding; an exact tie counts in the token's favour either way).
TIE_GAP = 1e-4


def _default_dtype(student):
    model = student.model
    return model.to(resolve_dtype("auto", sum(p.numel() for p in model.parameters()), "cpu"))


@pytest.fixture(scope="module", params=["tiny", "lab-small"])
def student(request):
    if request.param == "tiny":
        st = tiny_student("chatml", seed=1, hidden=64, init_std=0.3)  # peaked, varied distributions
        _default_dtype(st)
        return st
    return load_student("lab-small")  # through the loader: its dtype is the default's


def samples(n: int = 6) -> list[Sample]:
    out = []
    for i in range(n):
        a, b = 11 * i + 3, 5 * i + 7
        steps = " ".join(f"{a} + {j} = {a + j}." for j in range(3 * i))  # lengths differ a lot
        out.append(Sample(id=str(i), prompt=({"role": "user", "content": f"What is {a} + {b}?"},),
                          response=f"{steps} So {a} + {b} = {a + b}.".strip(), gold=str(a + b), dataset="d"))
    return out


def spans_of(student, ss: list[Sample]) -> list[Span]:
    encs = [student.encode(s.prompt, s.response, max_length=1024) for s in ss]
    return [Span(e.input_ids, e.response_start, e.response_end) for e in encs]


def near_ties(student, span: Span) -> np.ndarray:
    """True at the response positions where another logit lies within TIE_GAP of the true one."""
    with torch.inference_mode():
        logits = student.model(torch.tensor([list(span.input_ids)])).logits[0].float()
    pos = torch.arange(span.start - 1, span.end - 1)
    lg = logits[pos]
    tgt = torch.tensor(list(span.input_ids[span.start:span.end]))
    gap = (lg - lg.gather(1, tgt[:, None])).abs()
    gap[torch.arange(len(tgt)), tgt] = float("inf")
    return (gap.min(1).values < TIE_GAP).numpy()


def assert_same(a, b, ties: np.ndarray) -> None:
    assert np.array_equal(a.token_ids, b.token_ids)
    assert np.abs(a.logprob - b.logprob).max() <= TOL
    assert np.abs(a.entropy - b.entropy).max() <= TOL
    assert np.array_equal(a.rank[~ties], b.rank[~ties])


def test_alone_batched_and_reordered_agree(student):
    sp = spans_of(student, samples())
    assert len({len(s.input_ids) for s in sp}) == len(sp)  # padding differs for every sample
    alone = [score_batch(student.model, [s])[0] for s in sp]
    together = score_batch(student.model, sp)
    reordered = score_batch(student.model, sp[::-1])[::-1]
    pairs = score_batch(student.model, [sp[0], sp[-1]])  # the shortest beside the longest
    for i, s in enumerate(sp):
        ties = near_ties(student, s)
        assert ties.mean() < 0.05  # the comparison is not vacuous
        assert_same(alone[i], together[i], ties)
        assert_same(alone[i], reordered[i], ties)
    assert_same(alone[0], pairs[0], near_ties(student, sp[0]))
    assert_same(alone[-1], pairs[1], near_ties(student, sp[-1]))


def test_tokens_table_does_not_depend_on_batch_size(student):
    ss = samples()
    one = compute_token_stats(student, ss, TokenStatsSettings(batch_tokens=1), progress=False)  # one per batch
    many = compute_token_stats(student, ss[::-1], TokenStatsSettings(batch_tokens=1 << 16), progress=False)
    many = many.set_index("sample_id").loc[one["sample_id"]]
    for (_, r1), (_, r2), span in zip(one.iterrows(), many.iterrows(), spans_of(student, ss)):
        ties = near_ties(student, span)
        assert np.array_equal(r1.token_ids, r2.token_ids)
        assert np.abs(r1.logprob - r2.logprob).max() <= TOL
        assert np.abs(r1.entropy - r2.entropy).max() <= TOL
        assert np.array_equal(r1["rank"][~ties], r2["rank"][~ties])
