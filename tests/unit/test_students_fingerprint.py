"""Student fingerprints: stable for the same student, different after any change that matters."""

from __future__ import annotations

import re

import torch

from dmc.students import Student, student_fingerprint, tiny_student, tiny_tokenizer

USER = ({"role": "user", "content": "What is 12 + 35?"},)


def test_format_and_determinism():
    a, b = tiny_student("chatml"), tiny_student("chatml")
    assert re.fullmatch(r"[0-9a-f]{16}", a.fingerprint)
    assert a.fingerprint == b.fingerprint == student_fingerprint(b.model, b.tokenizer)
    assert tiny_student("chatml", seed=1).fingerprint != a.fingerprint


def test_training_step_changes_it_after_refresh():
    s = tiny_student("chatml")
    before = s.fingerprint
    enc = s.encode(USER, "The answer is 47.")
    ids = torch.tensor([enc.input_ids])
    labels = ids.clone()
    labels[:, : enc.response_start] = -100
    s.model.train()
    opt = torch.optim.SGD(s.model.parameters(), lr=1e-3)
    s.model(input_ids=ids, labels=labels).loss.backward()
    opt.step()
    assert s.fingerprint == before  # cached until refreshed, as documented
    after = s.refresh_fingerprint()
    assert after != before and s.fingerprint == after


def test_tiny_weight_change_off_the_sample_changes_it():
    s = tiny_student("chatml")
    before = s.fingerprint
    w = s.model.model.layers[1].mlp.down_proj.weight
    with torch.no_grad():
        w.view(-1)[7] += 1e-3  # one element, almost surely not in the strided sample
    assert s.refresh_fingerprint() != before


def test_lora_adapter_changes_it():
    from peft import LoraConfig, get_peft_model

    s = tiny_student("chatml")
    before = s.fingerprint
    peft_model = get_peft_model(s.model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    # A fresh adapter computes the same function (B = 0) but is a different student to cache for.
    assert Student.from_model(peft_model, s.tokenizer, "lora").fingerprint != before


def test_tokenizer_and_template_changes_change_it():
    s = tiny_student("chatml")
    base = s.fingerprint
    # Chat template only.
    tok = tiny_tokenizer("chatml")
    tok.chat_template = tok.chat_template.replace("assistant", "bot")
    assert Student.from_model(s.model, tok, "t").fingerprint != base
    # Special-token roles only (same vocabulary and template).
    tok = tiny_tokenizer("chatml")
    tok.eos_token = "<|endoftext|>"
    assert Student.from_model(s.model, tok, "t").fingerprint != base
    # Vocabulary / merges.
    tok = tiny_tokenizer("chatml", vocab_words=["photosynthesis"])
    assert Student.from_model(s.model, tok, "t").fingerprint != base
    tok = tiny_tokenizer("chatml")
    tok.add_tokens(["<extra>"])
    assert Student.from_model(s.model, tok, "t").fingerprint != base
    # Same weights and vocabulary, another template family.
    assert Student.from_model(s.model, tiny_tokenizer("llama3"), "t").fingerprint != base


def test_runtime_tokenizer_state_does_not_change_it():
    s = tiny_student("chatml")
    before = s.fingerprint
    s.tokenizer(["a", "a b c"], padding=True, truncation=True, max_length=4)
    s.model.train()
    assert s.refresh_fingerprint() == before
