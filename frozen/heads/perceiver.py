"""Flamingo's Perceiver resampler as a prefix head: n learned latent queries cross-attend to the
tower's patch tokens, a few layers deep, and become the n prefix embeddings.

As in Flamingo (Alayrac et al. 2022) and open_flamingo's PerceiverResampler: pre-norm layers in
the tower's width W, where the latents attend to [patch tokens; latents] and then pass an MLP,
each with a residual; a final layer norm, then one linear map to the LM's width D. The media
time embeddings of video inputs are left out: each image is resampled on its own, and the
tower's patch tokens already carry their positions.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import OPTIONS_FIELD, HeadContext, PrefixHead


class PerceiverLayer(nn.Module):
    """Latents (N, n, W) attend to [patch tokens; latents] (N, P + n, W), then an MLP."""

    def __init__(self, width: int, heads: int, ff_mult: int):
        super().__init__()
        self.norm_tokens, self.norm_latents = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, bias=False, batch_first=True)
        self.mlp = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, ff_mult * width, bias=False),
                                 nn.GELU(), nn.Linear(ff_mult * width, width, bias=False))

    def forward(self, tokens: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        queries = self.norm_latents(latents)                                # (N, n, W)
        keys = torch.cat([self.norm_tokens(tokens), queries], dim=1)        # (N, P + n, W)
        latents = latents + self.attention(queries, keys, keys, need_weights=False)[0]
        return latents + self.mlp(latents)                                  # (N, n, W)


class PerceiverPrefixHead(PrefixHead):
    """Patch tokens (N, P, W) -> n learned latents resampled from them -> (N, n, D).

    Options:
    layers: resampler layers (cross-attention + MLP), default 2 (Flamingo: 6).
    heads: attention heads; must divide the tower's patch-token width W. Default 8.
    ff_mult: the MLP's hidden width, as a multiple of W. Default 4.
    """

    name = "perceiver"
    uses_tokens = True
    option_defaults = {"layers": 2, "heads": 8, "ff_mult": 4}

    def __init__(self, token_dim: int, lm_dim: int, num_tokens: int, layers: int = 2,
                 heads: int = 8, ff_mult: int = 4):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_tokens, token_dim))     # (n, W)
        self.layers = nn.ModuleList(PerceiverLayer(token_dim, heads, ff_mult)
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(token_dim)
        self.proj = nn.Linear(token_dim, lm_dim)

    @classmethod
    def check_options(cls, options: dict[str, Any], num_tokens: int) -> dict[str, Any]:
        options = super().check_options(options, num_tokens)
        for key, value in options.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{OPTIONS_FIELD}[{key!r}] must be an integer >= 1, got {value!r}")
        return options

    @classmethod
    def build(cls, context: HeadContext, options: dict[str, Any]) -> "PerceiverPrefixHead":
        if context.token_dim % options["heads"]:
            raise ValueError(f"{OPTIONS_FIELD}['heads'] = {options['heads']} must divide the "
                             f"tower's patch-token width {context.token_dim}")
        return cls(context.token_dim, context.lm_dim, context.num_tokens, **options)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:                 # (N, P, W)
        latents = self.latents.expand(tokens.shape[0], -1, -1)              # (N, n, W)
        for layer in self.layers:
            latents = layer(tokens, latents)
        return self.proj(self.norm(latents))                                # (N, n, D)
