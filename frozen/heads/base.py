"""The prefix-head interface: what every head is, what it is built from, what training tells it.

A head turns one image's tower features into n prefix embeddings in the LM's input space:
pooled feature (N, F) or patch tokens (N, P, W) -> (N, n, D). It is built by its class method
`build(context, options)`, from a `HeadContext` (the tower's widths, the LM's width, n, the LM's
tokenizer and read access to the LM's frozen input embeddings) and its own options (the dict
`FrozenConfig.prefix_head_options`, checked by `check_options`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

from ..config import did_you_mean

OPTIONS_FIELD = "FrozenConfig.prefix_head_options"


class LMEmbeddings:
    """Read access to the LM's frozen input-embedding table (V, D), looked up at each read.

    A plain object, not an nn.Module: the table is no parameter, buffer or submodule of the
    head that holds this, so it is never trained, saved, moved or sharded with the head. It is
    read where the LM keeps it (replicated on every rank under FSDP, frozen.training.fsdp).
    `scale` is what the LM's embedding module multiplies a row by (LMTraits.embed_scale, e.g.
    sqrt(D) for Gemma; 1 for most families): a mixture of rows times it is at the LM's scale.
    """

    def __init__(self, lm: nn.Module, scale: float = 1.0):
        self._lm, self.scale = lm, float(scale)

    @property
    def weight(self) -> torch.Tensor:                                       # (V, D)
        return self._lm.get_input_embeddings().weight


@dataclasses.dataclass(frozen=True)
class HeadContext:
    """What a head is built from."""

    feature_dim: int            # F: the tower's pooled feature (N, F)
    token_dim: int | None       # W: its patch tokens (N, P, W); None when it gives none
    lm_dim: int                 # D: the LM's width
    num_tokens: int             # n: prefix embeddings per image
    tokenizer: Any              # the LM's tokenizer (token ids by name)
    embeddings: LMEmbeddings    # the LM's frozen input embeddings (V, D), read-only


class PrefixHead(nn.Module):
    """Base class of the prefix heads. A subclass in a module of `frozen/heads/` with a `name`
    is a head: `FrozenConfig(prefix_head=name)` builds it, nothing else needs to know it.

    name: the key in FrozenConfig.prefix_head.
    uses_tokens: forward takes patch tokens (N, P, W) instead of the pooled feature (N, F).
    at_lm_scale: its prefixes are already at the scale of the LM's token embeddings (e.g.
        mixtures of them), so FrozenConfig.prefix_norm does not rescale them.
    option_defaults: its options and their defaults (FrozenConfig.prefix_head_options).
    """

    name: ClassVar[str] = ""
    uses_tokens: ClassVar[bool] = False
    at_lm_scale: ClassVar[bool] = False
    option_defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def check_options(cls, options: dict[str, Any], num_tokens: int) -> dict[str, Any]:
        """The options as given, checked (subclasses check values too); unknown names raise."""
        unknown = sorted(set(options) - set(cls.option_defaults))
        if unknown:
            known = sorted(cls.option_defaults)
            raise ValueError(f"{OPTIONS_FIELD}: prefix_head {cls.name!r} has no option "
                             f"{unknown[0]!r}{did_you_mean(unknown[0], known)}; its options: "
                             f"{known or 'none'}")
        return dict(options)

    @classmethod
    def build(cls, context: HeadContext, options: dict[str, Any]) -> "PrefixHead":
        """The head for this tower and LM; `options` holds every option (defaults filled in)."""
        raise NotImplementedError

    def forward(self, features: torch.Tensor) -> torch.Tensor:     # (N, F) or (N, P, W)
        """-> prefix embeddings (N, n, D)."""
        raise NotImplementedError

    def on_train_progress(self, progress: float) -> None:
        """Called by training before each step, progress from 0 (start) to 1 (last step)."""
