"""SFT: response-only labels, the run directory, full fine-tuning and LoRA, periodic evaluation."""

from __future__ import annotations

import json

import pytest
import torch

from dmc.data.schema import EvalItem, Sample
from dmc.training import IGNORE_INDEX, SFTCollator, TrainConfig, resolve_bf16, train


def _q(i: int) -> tuple[dict[str, str], ...]:
    return ({"role": "user", "content": f"What is {i} + {7 - i}?"},)


SEVENS = [Sample(id=f"s{i}", prompt=_q(i), response="7 - so the answer is 7.", gold="7") for i in range(8)]
EVAL = [EvalItem(id=f"e{i}", prompt=_q(i), gold="7") for i in range(4)]


@pytest.mark.parametrize("template", ["chatml", "llama3", "none"])
def test_collator_labels_response_and_stop_token_only(tiny_student_factory, template):
    st = tiny_student_factory(template)
    col = SFTCollator(st, max_length=512)
    batch = col([SEVENS[0], Sample(id="long", prompt=_q(1), response="1 + 6 = 7. " * 3 + "The answer is 7.", gold="7")])
    for row, s in enumerate([SEVENS[0]]):
        enc = st.encode(s.prompt, s.response, max_length=512)
        ids = batch["input_ids"][row].tolist()
        labels = batch["labels"][row].tolist()
        n = len(enc.input_ids)
        assert ids[:n] == enc.input_ids
        trained = [i for i, lab in enumerate(labels) if lab != IGNORE_INDEX]
        stop = list(range(enc.response_end, enc.response_end + 1)) if enc.response_end < n else []
        assert trained == list(range(enc.response_start, enc.response_end)) + stop
        assert all(labels[i] == ids[i] for i in trained)
        # the one label past the response is the end-of-turn token generation stops at
        if stop:
            assert ids[stop[0]] in st.stop_token_ids
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (len(ids) - n)
    assert batch["input_ids"].shape == batch["labels"].shape


def test_collator_truncation_drops_the_stop_label(tiny_student_factory):
    st = tiny_student_factory("chatml")
    s = SEVENS[0]
    full = st.encode(s.prompt, s.response)
    col = SFTCollator(st, max_length=full.response_end - 2)
    labels = col([s])["labels"][0].tolist()
    enc = st.encode(s.prompt, s.response, max_length=full.response_end - 2)
    assert enc.truncated
    assert [i for i, lab in enumerate(labels) if lab != IGNORE_INDEX] == list(range(enc.response_start, enc.response_end))


def test_collator_rejects_foreign_rows(tiny_student_factory):
    col = SFTCollator(tiny_student_factory("chatml"), max_length=64)
    with pytest.raises(TypeError, match="Sample rows"):
        col([{"question": "x"}])


def test_full_finetuning_learns_and_writes_the_run_dir(tmp_path, tiny_student_factory):
    from transformers import AutoModelForCausalLM

    st = tiny_student_factory("chatml")
    cfg = TrainConfig(output_dir=str(tmp_path / "run"), steps=40, batch_size=4, learning_rate=1e-2, bf16=False,
                      eval_every=20, eval_max_new_tokens=16, lr_scheduler="constant")
    res = train(st, SEVENS, cfg, eval_items=EVAL)
    run = tmp_path / "run"
    # learned the answer and to stop after it
    assert res.final_eval.accuracy == 1.0 and res.final_eval.n_truncated == 0
    assert [e["step"] for e in res.evals] == [0, 20]
    assert res.evals[0]["accuracy"] == 0.0
    events = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in events if e["event"] == "train" and "loss" in e]
    assert len(losses) == 40 and losses[-1] < 0.2 * losses[0]
    assert [e["step"] for e in events if e["event"] == "eval"] == [0, 20, 40]
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["steps"] == 40 and config["bf16_resolved"] is False
    assert config["student"]["name"] == st.name and config["data"]["rows"] == 8
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == 40 and metrics["final_eval"]["accuracy"] == 1.0
    assert metrics["student_fingerprint_final"] != config["student"]["fingerprint"]
    assert (run / "eval" / "per_question.parquet").is_file() and (run / "eval" / "per_question.jsonl").is_file()
    # the saved model is a standard Hugging Face directory holding the trained weights
    assert (run / "model" / "model.safetensors").is_file() and (run / "model" / "tokenizer.json").is_file()
    loaded = AutoModelForCausalLM.from_pretrained(run / "model")
    for k, v in st.model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k


def test_training_is_seeded(tmp_path, tiny_student_factory):
    def losses(seed, name):
        cfg = TrainConfig(output_dir=str(tmp_path / name), steps=6, batch_size=2, seed=seed, bf16=False, save_model=False)
        train(tiny_student_factory("chatml"), SEVENS, cfg)
        events = [json.loads(x) for x in (tmp_path / name / "log.jsonl").read_text().splitlines()]
        return [e["loss"] for e in events if "loss" in e]

    assert losses(0, "a") == losses(0, "b")
    assert losses(0, "a") != losses(1, "c")


def test_lora_run_is_a_function_of_its_seed_not_of_the_process_rng(tmp_path, tiny_student_factory):
    # The adapters are initialised from the global RNG: a worker that ran other pilots before (or
    # a fresh process, whose torch seed is random) must still give the same run for the same seed.
    def run(name, seed, noise):
        torch.manual_seed(noise)
        torch.rand(1000)
        st = tiny_student_factory("chatml")
        torch.manual_seed(noise + 1)
        cfg = TrainConfig(output_dir=str(tmp_path / name), steps=4, batch_size=2, seed=seed, bf16=False,
                          lora_r=4, lora_alpha=8, save_model=False)
        train(st, SEVENS, cfg)
        return [json.loads(x)["loss"] for x in (tmp_path / name / "log.jsonl").read_text().splitlines() if '"loss"' in x]

    a, b, c = run("a", 0, 1), run("b", 0, 2), run("c", 1, 1)
    assert len(a) == 4 and a == b
    assert a != c


def test_lora_trains_adapters_and_saves_a_merged_model(tmp_path, tiny_student_factory):
    from transformers import AutoModelForCausalLM

    st = tiny_student_factory("chatml")
    # LoRA leaves the (tied) embeddings frozen, and the tiny model's small embedding norms cap its
    # logits near uniform; scaled up, the frozen head can express a confident prediction.
    with torch.no_grad():
        st.model.get_input_embeddings().weight.mul_(10)
    before = {k: v.clone() for k, v in st.model.state_dict().items()}
    cfg = TrainConfig(output_dir=str(tmp_path / "lora"), steps=30, batch_size=4, learning_rate=1e-2, bf16=False,
                      lora_r=8, lora_alpha=16, lr_scheduler="constant", eval_max_new_tokens=16)
    res = train(st, SEVENS, cfg, eval_items=EVAL[:2])
    run = tmp_path / "lora"
    assert (run / "adapter" / "adapter_config.json").is_file()
    assert json.loads((run / "config.json").read_text())["lora"] is True
    after = st.model.state_dict()
    assert set(after) == set(before)  # merged back: no LoRA modules left in the student
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all("proj" in k for k in changed)  # only the adapted linear layers moved
    loaded = AutoModelForCausalLM.from_pretrained(run / "model")
    x = torch.tensor([st.encode_prompt(EVAL[0].prompt)])
    with torch.no_grad():
        assert torch.allclose(loaded(x).logits, st.model(x).logits, atol=1e-5)
    losses = [json.loads(x)["loss"] for x in (run / "log.jsonl").read_text().splitlines() if '"loss"' in x]
    assert losses[-1] < 0.3 * losses[0]
    assert res.final_eval.n == 2 and res.final_eval.accuracy == 1.0  # the merged student answers


def test_bf16_auto_and_config_validation(tiny_student_factory):
    st = tiny_student_factory("chatml")
    assert resolve_bf16("auto", st.model) is False  # far below the size where bf16 autocast pays off
    assert resolve_bf16(True, st.model) is True and resolve_bf16(False, st.model) is False
    with pytest.raises(ValueError, match="steps must be >= 1"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="lora_r"):
        TrainConfig(lora_r=0)
    with pytest.raises(ValueError, match="bf16"):
        TrainConfig(bf16="yes")
    with pytest.raises(ValueError, match="unknown setting"):
        TrainConfig.from_dict({"stepz": 3})
    assert TrainConfig.from_dict(TrainConfig(steps=7).to_dict()).steps == 7


def test_train_without_data_or_curriculum_fails(tmp_path, tiny_student_factory):
    with pytest.raises(ValueError, match="no data given"):
        train(tiny_student_factory("chatml"), None, TrainConfig(output_dir=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(tiny_student_factory("chatml"), SEVENS, TrainConfig(output_dir=str(tmp_path / "x")), resume_from_checkpoint=True)
