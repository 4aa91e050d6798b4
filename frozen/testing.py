"""Tiny random language models and tokenizers built in code, for tests and benchmarks.

Nothing is downloaded: a byte-level BPE tokenizer is trained on a few sentences and a random
model of the chosen architecture family is saved next to it.

`make_tiny_lm_dir(tmp_path, arch)` writes a Hugging Face model folder (config, safetensors
weights, tokenizer) that `FrozenConfig(lm=...)` loads exactly like a real 7B checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPTJConfig,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    OPTConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

TINY_VISION = {"layers": [1, 1, 1, 1], "width": 8, "image_size": 32}

TRAINING_TEXT = [
    "Q: What is the capital of France? A: Paris.",
    "Translate to French: cheese => fromage",
    "def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)",
    "A photo of a dog. A photo of a cat. A photo of a red circle on the left.",
    "the quick brown fox jumps over the lazy dog 0123456789",
    "User: hello there\nAssistant: hi, how can I help?",
]

ARCHS = ("llama", "gpt2", "gpt_neox", "opt", "qwen2", "mistral", "gptj")


def make_tiny_tokenizer(add_bos: bool = True, vocab_size: int = 320) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on a few sentences; optionally prepends <s>."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(TRAINING_TEXT * 4, trainer=trainer)
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def tiny_config(arch: str, vocab_size: int, hidden: int = 32, layers: int = 2, heads: int = 4,
                context: int = 256):
    """A small random config of the given architecture family."""
    common = dict(vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if arch == "llama":
        return LlamaConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                           num_attention_heads=heads, num_key_value_heads=heads // 2,
                           max_position_embeddings=context, **common)
    if arch == "mistral":
        return MistralConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                             num_attention_heads=heads, num_key_value_heads=heads // 2,
                             max_position_embeddings=context, **common)
    if arch == "gptj":
        return GPTJConfig(n_embd=hidden, n_layer=layers, n_head=heads, rotary_dim=hidden // heads,
                          n_positions=context, **common)
    if arch == "qwen2":
        return Qwen2Config(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                           num_attention_heads=heads, num_key_value_heads=heads // 2,
                           max_position_embeddings=context, **common)
    if arch == "gpt2":
        return GPT2Config(n_embd=hidden, n_layer=layers, n_head=heads, n_positions=context, **common)
    if arch == "gpt_neox":
        return GPTNeoXConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                             num_attention_heads=heads, max_position_embeddings=context, **common)
    if arch == "opt":
        return OPTConfig(hidden_size=hidden, ffn_dim=2 * hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, max_position_embeddings=context,
                         word_embed_proj_dim=hidden, **common)
    raise ValueError(f"unknown tiny arch {arch!r}; choose from {ARCHS}")


def make_tiny_lm_dir(tmp_path: Path, arch: str = "llama", seed: int = 0, context: int = 256) -> str:
    """Save a tiny random causal LM + tokenizer folder and return its path."""
    out = Path(tmp_path) / f"tiny-{arch}-{seed}-{context}"
    if (out / "config.json").exists():
        return str(out)
    tokenizer = make_tiny_tokenizer(add_bos=arch in ("llama", "opt"))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, len(tokenizer), context=context))
    # A larger init than the default makes random greedy outputs vary with the prompt.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)
