"""dmc.lab pretrain: a reduced run is deterministic for a seed and writes a complete HF directory."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from dmc.lab import pretrain
from dmc.lab.corpus import CorpusRecipe, corpus_documents, pack
from dmc.lab.tokenizer import build_tokenizer

RECIPE = CorpusRecipe(n_docs=120)


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pretrain")
    kw = dict(steps=3, recipe=RECIPE, eval_n=0, log=_quiet)
    return d, [pretrain("lab-small", d / n, seed=s, **kw) for n, s in (("a", 0), ("b", 0), ("c", 1))]


def test_corpus_is_seeded():
    tok = build_tokenizer()
    a, b, c = (corpus_documents(RECIPE, s, tok) for s in (0, 0, 1))
    assert a == b and a != c and len(a) == 120
    blocks = pack(a, tok, 64)
    assert blocks and all(len(x) == 64 for x in blocks)


def test_same_seed_same_weights(runs):
    d, (ma, mb, mc) = runs
    wa, wb, wc = (load_file(str(d / n / "model.safetensors")) for n in "abc")
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)  # another seed trains another model
    assert ma["final_loss"] == mb["final_loss"] and ma["loss_curve"] == mb["loss_curve"]
    assert (d / "a" / "tokenizer.json").read_bytes() == (d / "b" / "tokenizer.json").read_bytes()


def test_output_is_a_complete_hf_directory(runs):
    d, (ma, _, _) = runs
    out = d / "a"
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json", "manifest.json", "generation_config.json"):
        assert (out / f).is_file(), f
    assert "chat_template" in json.loads((out / "tokenizer_config.json").read_text())
    man = json.loads((out / "manifest.json").read_text())
    assert man == json.loads(json.dumps(ma))
    assert man["seed"] == 0 and man["steps"] == 3 and man["corpus"]["recipe"]["n_docs"] == 120
    assert "dmc lab pretrain --student lab-small" in man["command"]
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.eos_token_id == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert man["n_parameters"] == sum(p.numel() for p in model.parameters())
    assert not list(d.glob(".*tmp*"))  # no temp directories left behind


def test_initial_accuracy_is_recorded(tmp_path):
    m = pretrain("lab-small", tmp_path / "s", steps=1, recipe=CorpusRecipe(n_docs=40), eval_n=3, log=_quiet)
    for fam in ("arith", "listops"):
        acc = m["initial_accuracy"][fam]
        assert acc["n"] == 3 and 0.0 <= acc["accuracy"] <= 1.0
        assert acc["accuracy"] == acc["n_correct"] / 3


def test_unknown_student(tmp_path):
    with pytest.raises(KeyError, match="unknown lab student"):
        pretrain("lab-huge", tmp_path / "x", steps=1, log=_quiet)
