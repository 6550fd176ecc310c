"""compute_attempts: one set of k graded attempts per distinct question, cached and reused."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from dmc.data.schema import EvalItem, Sample
from dmc.grading import extract_answer, grade_many
from dmc.stats import ATTEMPTS_SCHEMA, AttemptSettings, Span, StatsCache, compute_attempts, question_hash, score_batch
from dmc.stats.attempts import batch_seed, questions_per_batch
from dmc.students import Student, generate, tiny_tokenizer
from dmc.students.tiny import tiny_student


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread, and the CPU is shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# Words that become single tokens, so sampled attempts often contain numbers (extractable answers).
VOCAB = ["12", "35", "47", "answer", "is"]


@pytest.fixture(scope="module")
def student():
    return tiny_student("chatml", seed=2, vocab_words=VOCAB)


def q(i: int, dataset: str = "A", gold: str | None = "x") -> Sample:
    return Sample(id=f"{dataset}{i}", prompt=({"role": "user", "content": f"What is {i} + {2 * i}?"},),
                  response="unused", gold=gold if gold != "x" else str(3 * i), dataset=dataset)


def test_shared_questions_attempted_once_and_graded(student):
    a = [q(i, "A") for i in range(4)]
    b = [q(i, "B") for i in range(2)] + [q(9, "B", gold=None)]  # two questions shared with A, one without gold
    settings = AttemptSettings(k=3, temperature=1.0, max_new_tokens=10, batch_size=6, seed=1)
    df = compute_attempts(student, a + b, settings, progress=False)
    assert list(df.columns) == ATTEMPTS_SCHEMA.names
    run = df.attrs["run"]
    assert (run["requested"], run["unique"], run["computed"]) == (7, 5, 5)
    expected_q = [x.question_hash for x in a] + [b[2].question_hash]
    assert df["question_hash"].tolist() == [h for h in expected_q for _ in range(3)]
    assert df["attempt"].tolist() == [0, 1, 2] * 5
    # Every grade is what dmc.grading says of that text against that question's gold.
    golds = {x.question_hash: x.gold for x in a + b}
    ref = grade_many(df["text"].tolist(), [golds[h] for h in df["question_hash"]])
    assert df["grade"].tolist() == [g.status for g in ref]
    assert [x if isinstance(x, str) else None for x in df["answer"]] == [g.answer for g in ref]
    nogold = df[df["question_hash"] == b[2].question_hash]
    assert (nogold["grade"] == "ungradable").all() and (nogold["reason"] == "no gold").all()
    # Sampling at temperature 1 gives different attempts at the same question.
    assert df.groupby("question_hash")["text"].nunique().max() > 1


def test_attempt_fields_match_the_model(student):
    settings = AttemptSettings(k=2, temperature=1.0, max_new_tokens=8, batch_size=6, seed=3)
    qs = [q(i) for i in range(3)]
    assert questions_per_batch(settings) == 3  # one generation batch
    df = compute_attempts(student, qs, settings, progress=False)
    gens = generate(student, [x.prompt for x in qs], k=2, temperature=1.0, top_p=1.0, max_new_tokens=8,
                    seed=batch_seed(3, [x.question_hash for x in qs]), batch_size=6)
    rows = iter(df.itertuples())
    for x, per_q in zip(qs, gens):
        prompt_ids = student.encode_prompt(x.prompt)
        for g in per_q:
            row = next(rows)
            assert (row.text, row.n_tokens, row.truncated) == (g.text, len(g.token_ids), g.truncated)
            assert row.truncated == (row.n_tokens == 8 and g.token_ids[-1] not in student.stop_token_ids)
            # mean_surprisal is the mean -log p of the attempt's own tokens: re-score them teacher-forced.
            ids = g.token_ids
            st = score_batch(student.model, [Span(prompt_ids + ids, len(prompt_ids), len(prompt_ids) + len(ids))])[0]
            assert float(-st.logprob.astype(np.float64).mean()) == pytest.approx(row.mean_surprisal, abs=1e-3)


def untied_student(seed: int = 0) -> Student:
    """A random tiny Llama with an untied head: its greedy text is not one repeated token (a tied
    random model's is), and with seed 0 it writes numbers."""
    tok = tiny_tokenizer("chatml")
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg).eval()
    return Student.from_model(model, tok, "untied")


def test_greedy_attempts_and_a_correct_grade():
    student = untied_student()
    qs = [q(i) for i in range(6)]
    greedy = AttemptSettings(k=2, temperature=0.0, max_new_tokens=16, batch_size=8)
    first = compute_attempts(student, qs, greedy, progress=False)
    texts = first["text"].tolist()
    assert texts[0::2] == texts[1::2]  # greedy: k identical attempts
    # Make a question whose gold is what the student answers: it must be graded correct.
    answered = [(x, extract_answer(t).answer) for x, t in zip(qs, texts[0::2]) if extract_answer(t).answer]
    assert answered, "no greedy attempt had an extractable answer"
    x, ans = answered[0]
    fixed = Sample(id="fixed", prompt=x.prompt, response="unused", gold=ans, dataset="A")
    df = compute_attempts(student, [fixed], greedy, progress=False)
    assert df["grade"].tolist() == ["correct", "correct"]
    assert df["answer"].tolist() == [ans, ans]


def test_eval_items_share_question_hash_with_samples():
    s = q(1)
    e = EvalItem(id="e1", prompt=s.prompt, gold=s.gold)
    assert question_hash(e) == s.question_hash == question_hash(s)


def test_cache_reuse_does_no_generation(tmp_path, student):
    settings = AttemptSettings(k=2, temperature=0.7, top_p=0.9, max_new_tokens=6, batch_size=4, seed=5)
    qs = [q(i) for i in range(5)]
    first = compute_attempts(student, qs, settings, cache=StatsCache(tmp_path), progress=False)
    assert first.attrs["run"]["computed"] == 5 and first.attrs["run"]["forward_passes"] == 3  # 2 questions per batch

    calls = []
    hook = student.model.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        again = compute_attempts(student, list(reversed(qs)), settings, cache=StatsCache(tmp_path), progress=False)
    finally:
        hook.remove()
    assert calls == [] and again.attrs["run"]["computed"] == 0 and again.attrs["run"]["reused"] == 5
    back = again.set_index(["question_hash", "attempt"]).loc[list(zip(first.question_hash, first.attempt))]
    assert back["text"].tolist() == first["text"].tolist()
    np.testing.assert_allclose(back["mean_surprisal"], first["mean_surprisal"])

    # A question added later is the only one generated; different k is a different cache entry.
    more = compute_attempts(student, qs + [q(7)], settings, cache=StatsCache(tmp_path), progress=False)
    assert more.attrs["run"]["computed"] == 1
    other = compute_attempts(student, qs, AttemptSettings(k=1, temperature=0.7, top_p=0.9, max_new_tokens=6, seed=5),
                             cache=StatsCache(tmp_path), progress=False)
    assert other.attrs["run"]["computed"] == 5


def test_sampling_is_reproducible(student):
    settings = AttemptSettings(k=2, temperature=1.0, max_new_tokens=6, batch_size=4, seed=11)
    qs = [q(i) for i in range(3)]
    a = compute_attempts(student, qs, settings, progress=False)
    b = compute_attempts(student, qs, settings, progress=False)
    assert a["text"].tolist() == b["text"].tolist()
    c = compute_attempts(student, qs, AttemptSettings(k=2, temperature=1.0, max_new_tokens=6, batch_size=4, seed=12),
                         progress=False)
    assert c["text"].tolist() != a["text"].tolist()
    assert all(math.isfinite(x) for x in a["mean_surprisal"])


def test_settings_validation():
    with pytest.raises(ValueError, match="top_p"):
        AttemptSettings(top_p=0.0)
    with pytest.raises(ValueError, match="k"):
        AttemptSettings(k=0)
    assert AttemptSettings(batch_size=4).settings_hash == AttemptSettings(batch_size=32).settings_hash
    assert AttemptSettings(seed=1).settings_hash != AttemptSettings(seed=2).settings_hash
