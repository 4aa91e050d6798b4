"""Loading the frozen language model and its tokenizer, freezing it, fingerprinting it, and
reading once what differs between LM families (`LMTraits`).

Any AutoModelForCausalLM works, from a local folder or a hub id. The fingerprint (a hash of the
architecture config and the vocabulary) lets a saved vision side refuse a different LM.

Every LM-family difference the rest of the code needs (does the forward take position ids,
which special tokens open a text, the context window, the decoder block class, the scale the
embedding module applies, the chat template, the cache argument) is found here by inspecting
the loaded model and tokenizer; a family that inspection gets wrong gets an entry in
`LM_OVERRIDES`, keyed on the transformers config's `model_type`. Nothing else probes the LM.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .config import FrozenConfig

log = logging.getLogger("frozen")

# Config keys that differ between copies of the same model and say nothing about its function.
_VOLATILE_CONFIG_KEYS = {"_name_or_path", "transformers_version", "torch_dtype", "dtype",
                         "_attn_implementation", "_attn_implementation_autoset", "use_cache",
                         "_commit_hash", "output_attentions", "output_hidden_states"}


def _looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else that does not exist is a missing folder."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def resolve_lm_source(name: str) -> str:
    """A local folder path, checked, or a hub id left as is."""
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise FileNotFoundError(f"LM {name!r} is a file; expected a Hugging Face model folder "
                                    "(with config.json and weights) or a hub id")
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"LM folder {name!r} has no config.json: not a Hugging Face "
                                    "model folder")
        return str(path)
    if _looks_like_path(name):
        raise FileNotFoundError(f"LM folder not found: {name!r} (give an existing local model "
                                "folder or a hub id such as 'meta-llama/Llama-2-7b-hf')")
    return name


def absolute_lm_source(name: str) -> str:
    """An existing local LM folder as an absolute path (so a saved model loads from any working
    folder); a hub id as is."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name


def load_tokenizer(source: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as err:
        raise FileNotFoundError(f"cannot load the tokenizer of LM {source!r}: {err}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_lm(cfg: FrozenConfig) -> tuple[nn.Module, object]:
    """Load (model, tokenizer) for `cfg.lm` in `cfg.dtype`.

    With `cfg.lm_device` set, the LM is built from its config alone on that device, with random
    weights ("meta": no memory at all), e.g. to check a 7B config or benchmark its shape.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    source = resolve_lm_source(cfg.lm)
    dtype = getattr(torch, cfg.dtype)
    tokenizer = load_tokenizer(source)
    try:
        if cfg.lm_device is not None:     # architecture only: random weights, no checkpoint read
            lm_config = AutoConfig.from_pretrained(source)
            with torch.device(cfg.lm_device):
                model = AutoModelForCausalLM.from_config(lm_config, dtype=dtype)
        else:
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except OSError as err:
        raise FileNotFoundError(f"cannot load LM {cfg.lm!r}: not a local folder, and the hub "
                                f"could not provide it ({err})") from None
    except ValueError as err:
        raise ValueError(f"LM {cfg.lm!r} is not a causal language model that "
                         f"AutoModelForCausalLM can load: {err}") from None
    check_accepts_embeddings(model)
    return model, tokenizer


def check_accepts_embeddings(model: nn.Module) -> None:
    """Prefix embeddings reach the LM through `inputs_embeds`; refuse models without it."""
    params = inspect.signature(model.forward).parameters
    if "inputs_embeds" not in params:
        raise ValueError(f"{type(model).__name__} cannot take input embeddings (its forward has no "
                         "`inputs_embeds`), so image prefixes cannot be fed to it")


def freeze(model: nn.Module) -> None:
    """Freeze every parameter and switch to eval mode; assert nothing is left trainable."""
    model.requires_grad_(False)
    model.eval()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert not trainable, f"LM parameters still trainable after freezing: {trainable[:5]}"


def context_length(model: nn.Module, tokenizer) -> int | None:
    """The LM's context window in tokens, or None when it has no fixed window."""
    config = model.config
    config = getattr(config, "get_text_config", lambda: config)()
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and limit < 10**7 else None


def embedding_rms(model: nn.Module, embed_scale: float = 1.0) -> float:
    """Typical RMS of the LM's token embeddings as its embedding module gives them (the table's
    RMS times `embed_scale`, see LMTraits), mean over the vocabulary."""
    weight = model.get_input_embeddings().weight
    if weight.is_meta:
        return 1.0
    return float(weight.detach().float().pow(2).mean(-1).sqrt().mean()) * embed_scale


def fingerprint(model: nn.Module, tokenizer) -> str:
    """A hash of the LM's architecture config and vocabulary, stable across copies and paths."""
    config = {k: v for k, v in model.config.to_dict().items() if k not in _VOLATILE_CONFIG_KEYS}
    vocab = sorted(tokenizer.get_vocab().items())
    payload = json.dumps({"config": config, "vocab": vocab}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ----- what differs between LM families ------------------------------------------------------

# model_type -> traits that inspection gets wrong for that family, each a function of the
# transformers config. Keep it small: prefer making the inspection below see the difference.
LM_OVERRIDES: dict[str, dict[str, Callable[[Any], Any]]] = {
    # MPT (ALiBi) names its training window `max_seq_len`, a key no other family uses.
    "mpt": {"context_length": lambda config: config.max_seq_len},
}


@dataclasses.dataclass(frozen=True)
class LMTraits:
    """What the code needs to know about one LM family, read once when the LM is loaded."""

    model_type: str                    # the transformers config's model_type
    accepts_positions: bool            # forward takes `position_ids`
    special_prefix: tuple[int, ...]    # ids the tokenizer puts before a text (BOS), maybe ()
    special_prefix_text: str           # those ids as text (what a chat template starts with)
    context_length: int | None         # the window in tokens; None: no fixed window
    block_types: tuple[type[nn.Module], ...]   # the repeated decoder block classes, maybe ()
    # The embedding module gives table rows times this (Gemma: sqrt(D)); the forward does not
    # scale `inputs_embeds` again, so spliced prefixes need no correction, only a norm target.
    embed_scale: float
    chat_template: bool                # the tokenizer has a chat template
    cache_arg: str                     # forward's KV-cache argument: "cache" or "past_key_values"
    takes_logits_to_keep: bool         # forward can compute the last position's logits only
    static_decoding: bool              # decoder-only, takes a StaticCache, compiles fullgraph


def lm_traits(model: nn.Module, tokenizer) -> LMTraits:
    """The traits of `model` found by inspection, then the family's LM_OVERRIDES entry."""
    params = inspect.signature(model.forward).parameters
    model_type = getattr(model.config, "model_type", "") or ""
    prefix = tuple(special_prefix(tokenizer))
    found = dict(
        model_type=model_type, accepts_positions="position_ids" in params,
        special_prefix=prefix,
        special_prefix_text=tokenizer.decode(list(prefix)) if prefix else "",
        context_length=context_length(model, tokenizer),
        block_types=decoder_block_types(model), embed_scale=embedding_scale(model),
        chat_template=bool(getattr(tokenizer, "chat_template", None)),
        # transformers 5.x renamed `past_key_values` to `cache`; take what this version has.
        cache_arg="cache" if "cache" in params else "past_key_values",
        takes_logits_to_keep="logits_to_keep" in params,
        static_decoding=(not model.config.is_encoder_decoder
                         and bool(getattr(model, "_can_compile_fullgraph", False))
                         and ("cache" in params or "past_key_values" in params)))
    for name, rule in LM_OVERRIDES.get(model_type, {}).items():
        found[name] = rule(model.config)
    return LMTraits(**found)


def special_prefix(tokenizer) -> list[int]:
    """The ids the tokenizer puts before text on its own (BOS for Llama, none for GPT-2)."""
    probe = "hello"
    with_special = tokenizer(probe, add_special_tokens=True)["input_ids"]
    without = tokenizer(probe, add_special_tokens=False)["input_ids"]
    for start in range(len(with_special) - len(without) + 1):
        if with_special[start:start + len(without)] == without:
            return list(with_special[:start])
    return []


def decoder_block_types(model: nn.Module) -> tuple[type[nn.Module], ...]:
    """The LM's decoder block classes: those it names in `_no_split_modules` (LlamaDecoderLayer,
    GPTJBlock, ...), else transformers' GradientCheckpointingLayer subclasses; () if none."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    found = {type(m) for m in model.modules() if type(m).__name__ in names}
    if not found:
        from transformers.modeling_layers import GradientCheckpointingLayer

        found = {type(m) for m in model.modules() if isinstance(m, GradientCheckpointingLayer)}
    return tuple(sorted(found, key=lambda t: t.__name__))


def embedding_scale(model: nn.Module) -> float:
    """The factor the input-embedding module applies to table rows (1 for most families; Gemma
    and MiniCPM scale inside the module), measured on a few rows."""
    module = model.get_input_embeddings()
    if getattr(module, "scalar_embed_scale", None) is not None:   # transformers' scaled embedding
        return float(module.scalar_embed_scale)
    if module.weight.is_meta:
        return 1.0
    ids = torch.arange(min(8, module.weight.shape[0]), device=module.weight.device)
    with torch.no_grad():
        table = module.weight[ids].float().norm()
        given = module(ids).float().norm()
    return float(given / table) if table > 0 else 1.0
