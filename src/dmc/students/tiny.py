"""Tiny in-process students for tests and examples: a byte-level BPE tokenizer trained on a short
built-in corpus and a randomly initialised 2-layer Llama, built in about a second, no download.

Templates:
- ``"chatml"``: Qwen-style ``<|im_start|>role\\n...<|im_end|>\\n``; no BOS; EOS ``<|im_end|>``.
- ``"llama3"``: ``<|begin_of_text|><|start_header_id|>role<|end_header_id|>\\n\\n...<|eot_id|>``
  (content trimmed, as Llama 3's own template does); the tokenizer prepends BOS; EOS ``<|eot_id|>``.
- ``"none"``: no chat template (the plain ``Question: ...\\nAnswer: ...`` fallback of
  :class:`~dmc.students.student.Student`); the tokenizer prepends BOS; EOS ``<|end_of_text|>``.

All templates share one vocabulary, so token ids are comparable across them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from dmc.students.student import Student

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<pad>",
)

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# Which special tokens play which role, per template.
_ROLES: dict[str, dict[str, str | None]] = {
    "chatml": {"bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>", "template": CHATML_TEMPLATE},
    "llama3": {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>", "pad": "<|end_of_text|>", "template": LLAMA3_TEMPLATE},
    "none": {"bos": "<|begin_of_text|>", "eos": "<|end_of_text|>", "pad": "<pad>", "template": None},
}

TEMPLATES = tuple(_ROLES)

_CORPUS = [
    "Question: What is 12 + 35? Answer: 12 + 35 = 47. The answer is 47.",
    "Let us think step by step. First, add the numbers. Then, check the result.",
    "We compute 7 * 8 = 56, then 56 - 6 = 50, so the final answer is 50.",
    "The sum of 3, 4 and 5 is 12. The product of 2 and 9 is 18.",
    "If x = 4 and y = 9 then x + y = 13 and y - x = 5.",
    "Step 1: 21 + 14 = 35. Step 2: 35 + 10 = 45. Final answer: 45",
    "the a an and or of to in is are was be it this that with for on as by at from",
    "system user assistant you are a helpful tutor who solves math problems carefully",
    "one two three four five six seven eight nine ten hundred thousand number total",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 25 30 40 50 60 70 80 90 100",
    "+ - * / = ( ) . , : ; ? ! answer Answer question Question result sum difference",
]


@functools.lru_cache(maxsize=16)
def _trained_backend_json(vocab_words: tuple[str, ...]) -> str:
    """Train the byte-level BPE once per vocabulary; the JSON is rebuilt into a fresh object per call."""
    tok = Tokenizer(models.BPE())
    # No offset trimming: each token's offsets cover the bytes it consumed, spaces included.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = _CORPUS * 3 + [" ".join(vocab_words)] * 5 if vocab_words else _CORPUS * 3
    tok.train_from_iterator(corpus, trainer=trainer)
    return tok.to_str()


def tiny_tokenizer(template: str = "chatml", *, vocab_words: Sequence[str] | None = None) -> PreTrainedTokenizerFast:
    """A small byte-level BPE tokenizer (any text encodes) with the given chat template.

    `vocab_words` are added to the training corpus so that they tend to become single tokens.
    """
    if template not in _ROLES:
        raise ValueError(f"unknown tiny template {template!r}; choose one of {list(TEMPLATES)}")
    roles = _ROLES[template]
    backend = Tokenizer.from_str(_trained_backend_json(tuple(vocab_words or ())))
    bos = roles["bos"]
    if bos is not None:  # like Llama 3: the tokenizer itself prepends BOS to plain text
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, backend.token_to_id(bos))]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=roles["eos"],
        pad_token=roles["pad"],
        chat_template=roles["template"],
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
    )


def tiny_student(
    template: str = "chatml",
    *,
    seed: int = 0,
    vocab_words: Sequence[str] | None = None,
    hidden: int = 32,
    layers: int = 2,
    init_std: float = 0.02,
    name: str | None = None,
) -> Student:
    """A randomly initialised tiny Llama (float32, CPU) with :func:`tiny_tokenizer`.

    The same arguments give the same weights; the global torch RNG is left untouched. `init_std`
    is the weights' initialisation std: the default (transformers') gives near-uniform next-token
    distributions; ~0.3 gives peaked, varied ones (useful when a test needs diverse generations).
    """
    tokenizer = tiny_tokenizer(template, vocab_words=vocab_words)
    heads = 4 if hidden % 4 == 0 else 1
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads // 2 if heads > 1 else 1,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        initializer_range=init_std,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.eval()
    student = Student.from_model(model, tokenizer, name or f"tiny-{template}-s{seed}")
    model.generation_config.eos_token_id = list(student.stop_token_ids)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return student
