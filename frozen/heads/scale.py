"""EmbeddingScale: prefixes rescaled to the typical size of the LM's own token embeddings."""

from __future__ import annotations

import torch
from torch import nn


class EmbeddingScale(nn.Module):
    """Rescale each prefix vector to the typical RMS of the LM's token embeddings.

    A prefix far larger or smaller than real token embeddings makes the frozen LM ignore or
    saturate on it; training then tends to collapse to one caption for every image.
    """

    def __init__(self, target_rms: float):
        super().__init__()
        self.register_buffer("target_rms", torch.tensor(float(target_rms)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:                     # (N, n, D)
        rms = x.float().pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-6)
        return (x.float() / rms * self.target_rms).to(x.dtype)
