"""The lab students' tokenizer: a small byte-level BPE with every digit its own token.

Digits are single tokens so that arithmetic is learnable digit by digit; words carry their leading
space (" answer"), punctuation may too (" +"), and any byte sequence is encodable (byte-level
alphabet), so user text never maps to an unknown token. The merges are learned from a fixed
sample of lab text, so the tokenizer is a deterministic function of the lab's generators.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from dmc.lab.build import dataset_rows, eval_problems
from dmc.lab.pool import DatasetSpec
from dmc.lab.tasks import TASK_FAMILIES

PAD, IM_START, IM_END = "<|pad|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END]
VOCAB_SIZE = 512
MODEL_MAX_LENGTH = 512

# ChatML-like; the end-of-turn token doubles as EOS so generation stops at the end of a trace.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# one digit | a list separator ", " | a word with its optional leading space | one punctuation
# mark with its optional leading space | one whitespace character
_SPLIT = r"\d|, | ?[A-Za-z]+| ?[^\sA-Za-z\d]|\s"


# The sample the merges are learned from: (dataset name, teacher, distribution, params), fixed
# here rather than read from the pool so that adding a candidate dataset keeps the tokenizer.
_SAMPLE_DATASETS = [
    ("stepwise", "stepwise", "standard", {}),
    ("terse", "terse", "standard", {}),
    ("verbose", "verbose", "standard", {}),
    ("redundant", "redundant", "standard", {}),
    ("answer-only", "answer-only", "standard", {}),
    ("noisy30", "noisy", "standard", {"error_rate": 0.3}),
    ("noisy70", "noisy", "standard", {"error_rate": 0.7}),
    ("mixed", "mixed", "standard", {}),
    ("easy-stepwise", "stepwise", "easy", {}),
    ("hard-stepwise", "stepwise", "hard", {}),
]


def _training_text(n_per_dataset: int = 40, seed: int = 0) -> list[str]:
    """A fixed sample of lab questions and traces (every family, several teachers)."""

    texts = ["system", "user", "assistant"] * 300  # the chat template's role names
    for fam, family in TASK_FAMILIES.items():
        probs = {}
        for name, teacher, dist, params in _SAMPLE_DATASETS:
            if dist not in probs:
                rng = random.Random(f"dmc-lab-tokenizer/{seed}/{fam}/{dist}")
                probs[dist] = [family.sample(rng, family.distributions[dist]) for _ in range(n_per_dataset)]
            for row in dataset_rows(DatasetSpec(name, fam, teacher, dist, params), probs[dist], seed):
                texts += [row["question"], row["response"]]
        texts += [p.question for p in eval_problems(fam, 8, seed=10_000 + seed)]
    return texts


def build_tokenizer(vocab_size: int = VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Train the lab tokenizer and wrap it for transformers (eos = end of turn, chat template set)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(_training_text(), trainer=trainer)
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD,
        extra_special_tokens=[IM_START],
        chat_template=CHAT_TEMPLATE,
        model_max_length=MODEL_MAX_LENGTH,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out: str | Path) -> None:
    """Save with the chat template inside tokenizer_config.json, plus special_tokens_map.json."""
    out = Path(out)
    tokenizer.save_pretrained(out, save_jinja_files=False)
    stm = {"eos_token": IM_END, "pad_token": PAD, "additional_special_tokens": [IM_START]}
    (out / "special_tokens_map.json").write_text(json.dumps(stm, indent=2) + "\n")
