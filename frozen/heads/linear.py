"""Frozen's prefix head: one linear map from the pooled feature to n free prefix vectors."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import HeadContext, PrefixHead


class LinearPrefixHead(PrefixHead):
    """Pooled feature (N, F) -> n embeddings (N, n, D) by one linear map."""

    name = "linear"

    def __init__(self, feature_dim: int, lm_dim: int, num_tokens: int):
        super().__init__()
        self.num_tokens, self.lm_dim = num_tokens, lm_dim
        self.proj = nn.Linear(feature_dim, num_tokens * lm_dim)

    @classmethod
    def build(cls, context: HeadContext, options: dict[str, Any]) -> "LinearPrefixHead":
        return cls(context.feature_dim, context.lm_dim, context.num_tokens)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:                 # (N, F)
        return self.proj(pooled).view(-1, self.num_tokens, self.lm_dim)     # (N, n, D)
