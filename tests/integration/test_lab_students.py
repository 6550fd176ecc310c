"""The shipped lab students: complete HF directories, small, partially capable, reproducible recipe."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from dmc.lab import LAB_ARCHS, eval_rows, lab_students, student_path, students_dir
from dmc.lab.accuracy import lab_accuracy
from dmc.lab.tokenizer import build_tokenizer

FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
         "special_tokens_map.json", "manifest.json")


def test_both_students_are_shipped_and_small():
    assert lab_students() == ["lab-small", "lab-base"] == list(LAB_ARCHS)
    total = 0
    for name in lab_students():
        d = student_path(name)
        assert d == students_dir() / name
        for f in FILES:
            assert (d / f).is_file(), f"{d / f}"
        total += sum(p.stat().st_size for p in d.iterdir())
    assert total <= 20 * 2**20


def test_manifests_record_the_recipe_and_partial_capability():
    ms = {n: json.loads((student_path(n) / "manifest.json").read_text()) for n in lab_students()}
    assert ms["lab-base"]["n_parameters"] >= 3 * ms["lab-small"]["n_parameters"]
    for name, m in ms.items():
        assert m["name"] == name and m["seed"] == 0 and m["steps"] > 0
        assert m["corpus"]["recipe"]["n_docs"] > 0 and m["command"]
        for fam in ("arith", "listops"):
            acc = m["initial_accuracy"][fam]
            assert acc["n"] == 128
            assert 0.05 <= acc["accuracy"] <= 0.60, (name, fam, acc)


def test_shipped_tokenizer_is_the_lab_tokenizer():
    def spec(t):  # everything but the runtime padding/truncation state
        d = json.loads(t.backend_tokenizer.to_str())
        return {k: v for k, v in d.items() if k not in ("padding", "truncation")}

    built = spec(build_tokenizer())
    for name in lab_students():
        tok = AutoTokenizer.from_pretrained(student_path(name))
        assert spec(tok) == built
        assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|pad|>"
        ids = tok("123 + 45 = 168", add_special_tokens=False)["input_ids"]
        toks = tok.convert_ids_to_tokens(ids)
        assert [t for t in toks if t.isdigit()] == list("12345168")  # one token per digit
        assert tok.decode(ids) == "123 + 45 = 168"
        text = tok.apply_chat_template([{"role": "user", "content": "Q"}], tokenize=False, add_generation_prompt=True)
        assert text == "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"


def test_recorded_initial_accuracy_is_reproduced():
    torch.set_num_threads(1)
    d = student_path("lab-small")
    m = json.loads((d / "manifest.json").read_text())
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForCausalLM.from_pretrained(d)
    acc = lab_accuracy(model, tok, "arith", eval_rows("arith", 128, seed=0))
    # greedy decoding is deterministic up to float ties between threads/batches
    assert abs(acc.n_correct - m["initial_accuracy"]["arith"]["n_correct"]) <= 2


def test_unknown_student_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown lab student"):
        student_path("lab-huge")
