"""Loading the frozen language model and its tokenizer, freezing it, and fingerprinting it.

Any AutoModelForCausalLM works, from a local folder or a hub id. The fingerprint (a hash of the
architecture config and the vocabulary) lets a saved vision side refuse a different LM.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from pathlib import Path

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


def embedding_rms(model: nn.Module) -> float:
    """Typical RMS of the LM's token embeddings (mean over the vocabulary)."""
    weight = model.get_input_embeddings().weight
    if weight.is_meta:
        return 1.0
    return float(weight.detach().float().pow(2).mean(-1).sqrt().mean())


def fingerprint(model: nn.Module, tokenizer) -> str:
    """A hash of the LM's architecture config and vocabulary, stable across copies and paths."""
    config = {k: v for k, v in model.config.to_dict().items() if k not in _VOLATILE_CONFIG_KEYS}
    vocab = sorted(tokenizer.get_vocab().items())
    payload = json.dumps({"config": config, "vocab": vocab}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
