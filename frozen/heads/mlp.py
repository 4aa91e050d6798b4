"""LLaVA-style prefix head: patch tokens pooled to n, then a 2-layer MLP."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import HeadContext, PrefixHead


class MLPPrefixHead(PrefixHead):
    """Patch tokens (N, P, W) average-pooled to n tokens, then a 2-layer MLP -> (N, n, D)."""

    name = "mlp"
    uses_tokens = True

    def __init__(self, token_dim: int, lm_dim: int, num_tokens: int):
        super().__init__()
        self.num_tokens = num_tokens
        self.mlp = nn.Sequential(nn.Linear(token_dim, lm_dim), nn.GELU(), nn.Linear(lm_dim, lm_dim))

    @classmethod
    def build(cls, context: HeadContext, options: dict[str, Any]) -> "MLPPrefixHead":
        return cls(context.token_dim, context.lm_dim, context.num_tokens)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:                 # (N, P, W)
        pooled = F.adaptive_avg_pool1d(tokens.transpose(1, 2), self.num_tokens)  # (N, W, n)
        return self.mlp(pooled.transpose(1, 2))                             # (N, n, D)
