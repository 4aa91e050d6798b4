"""Prefix heads: tower features -> n prefix embeddings in the LM's input space (N, n, D).

The registry is this folder: every `PrefixHead` subclass with a `name`, defined in one of its
modules, is a head that `FrozenConfig(prefix_head=name, prefix_head_options={...})` builds. To
add a head, add one module here (see base.PrefixHead for the interface); nothing else changes.
Modules are imported on the first look-up, so `frozen.config` can validate names without
importing them at import time.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import TYPE_CHECKING

from torch import nn

from .base import HeadContext, LMEmbeddings, PrefixHead
from .scale import EmbeddingScale

if TYPE_CHECKING:
    from ..config import FrozenConfig
    from ..vision import VisionTower

__all__ = ["EmbeddingScale", "HeadContext", "LMEmbeddings", "PrefixHead", "build_prefix_head",
           "head_class", "head_names"]


@functools.cache
def _registry() -> dict[str, type[PrefixHead]]:
    """{name: head class} over the modules of this folder."""
    heads: dict[str, type[PrefixHead]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, PrefixHead) and obj.name \
                    and obj.__module__ == module.__name__:
                if obj.name in heads:
                    raise RuntimeError(f"two prefix heads are named {obj.name!r}: "
                                       f"{heads[obj.name].__module__} and {module.__name__}")
                heads[obj.name] = obj
    return heads


def head_names() -> tuple[str, ...]:
    return tuple(_registry())


def head_class(name: str) -> type[PrefixHead]:
    """The head registered as `name`; KeyError if none is."""
    return _registry()[name]


def build_prefix_head(config: "FrozenConfig", tower: "VisionTower", lm: nn.Module,
                      tokenizer, embed_scale: float = 1.0) -> PrefixHead:
    """The head named by `config.prefix_head`, built for this tower and LM (`embed_scale`:
    LMTraits.embed_scale)."""
    head_cls = head_class(config.prefix_head)
    if head_cls.uses_tokens:
        if tower.token_dim is None:
            raise ValueError(f"prefix_head {config.prefix_head!r} needs patch tokens, but the "
                             f"tower {config.vision!r} gives only a pooled feature; use "
                             "prefix_head='linear'")
        tower.module.output_tokens = True
    context = HeadContext(feature_dim=tower.feature_dim, token_dim=tower.token_dim,
                          lm_dim=lm.get_input_embeddings().embedding_dim,
                          num_tokens=config.num_prefix_tokens, tokenizer=tokenizer,
                          embeddings=LMEmbeddings(lm, embed_scale))
    return head_cls.build(context, {**head_cls.option_defaults, **config.prefix_head_options})
