"""The trainable vision side: an open_clip image tower and the prefix heads that turn its
features into prefix embeddings in the LM's input space.

Heads live in a small registry (`PREFIX_HEADS`): add a class and a name to add a head.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import config
from .config import FrozenConfig
from .images import CLIP_MEAN, CLIP_STD


@dataclasses.dataclass
class VisionTower:
    """An open_clip image tower with what the rest of the system needs to know about it."""

    module: nn.Module
    image_size: int
    feature_dim: int          # F of the pooled feature (B, F)
    token_dim: int | None     # width of patch tokens (B, P, token_dim), None if unavailable
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD


def _vision_cfg(fields: dict[str, Any]):
    from open_clip.model import CLIPVisionCfg

    known = {f.name for f in dataclasses.fields(CLIPVisionCfg)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"FrozenConfig.vision has unknown open_clip vision field(s) {unknown}; "
                         f"known fields: {sorted(known)}")
    return CLIPVisionCfg(**fields)


def build_vision_tower(cfg: FrozenConfig) -> VisionTower:
    """Build the open_clip image tower named (or described) by `cfg.vision`."""
    import open_clip
    from open_clip.model import _build_vision_tower

    mean, std = CLIP_MEAN, CLIP_STD
    if isinstance(cfg.vision, dict):
        fields = dict(cfg.vision)
        if cfg.image_size:
            fields["image_size"] = cfg.image_size
        module = _build_vision_tower(cfg.vision_embed_dim, _vision_cfg(fields))
        if cfg.vision_pretrained:
            _load_tower_file(module, cfg.vision_pretrained)
    else:
        model_cfg = open_clip.get_model_config(cfg.vision)
        if model_cfg is None:
            raise ValueError(f"unknown vision tower {cfg.vision!r}: not an open_clip model name "
                             f"(see open_clip.list_models(), e.g. 'ViT-B-32', 'RN50')")
        if cfg.vision_pretrained:
            clip = open_clip.create_model(cfg.vision, pretrained=cfg.vision_pretrained,
                                          force_image_size=cfg.image_size)
            module = clip.visual
            pre = getattr(module, "preprocess_cfg", None) or {}
            mean, std = tuple(pre.get("mean", mean)), tuple(pre.get("std", std))
        else:
            # Only the image tower is built: a CLIP text tower would be dead weight here.
            fields = dict(model_cfg["vision_cfg"])
            if cfg.image_size:
                fields["image_size"] = cfg.image_size
            module = _build_vision_tower(model_cfg["embed_dim"], _vision_cfg(fields),
                                         quick_gelu=model_cfg.get("quick_gelu", False))
    size = module.image_size
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    token_dim = getattr(getattr(module, "transformer", None), "width", None)
    return VisionTower(module=module, image_size=size, feature_dim=int(module.output_dim),
                       token_dim=token_dim, mean=mean, std=std)


def _load_tower_file(module: nn.Module, path: str) -> None:
    from pathlib import Path

    if not Path(path).is_file():
        raise FileNotFoundError(f"FrozenConfig.vision_pretrained: no such file {path!r}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    state = {k.removeprefix("visual."): v for k, v in state.items()}
    module.load_state_dict(state)


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


class LinearPrefixHead(nn.Module):
    """Frozen's head: pooled feature (N, F) -> n embeddings (N, n, D) by one linear map."""

    uses_tokens = False

    def __init__(self, feature_dim: int, lm_dim: int, num_tokens: int):
        super().__init__()
        self.num_tokens, self.lm_dim = num_tokens, lm_dim
        self.proj = nn.Linear(feature_dim, num_tokens * lm_dim)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:                 # (N, F)
        return self.proj(pooled).view(-1, self.num_tokens, self.lm_dim)     # (N, n, D)


class MLPPrefixHead(nn.Module):
    """LLaVA-style head: patch tokens (N, P, W) pooled to n tokens, then a 2-layer MLP -> (N, n, D)."""

    uses_tokens = True

    def __init__(self, feature_dim: int, lm_dim: int, num_tokens: int):
        super().__init__()
        self.num_tokens = num_tokens
        self.mlp = nn.Sequential(nn.Linear(feature_dim, lm_dim), nn.GELU(), nn.Linear(lm_dim, lm_dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:                 # (N, P, W)
        pooled = F.adaptive_avg_pool1d(tokens.transpose(1, 2), self.num_tokens)  # (N, W, n)
        return self.mlp(pooled.transpose(1, 2))                             # (N, n, D)


class VocabularyPrefixHead(nn.Module):
    """Soft tokens: pooled feature (N, F) -> n mixtures of the LM's own token embeddings (N, n, D).

    Each prefix vector is softmax(s cos(q, E)) E, with q from one linear map, E the frozen
    input-embedding matrix (V, D) of the LM and s a learned sharpness. Prefixes therefore stay
    inside the space of embeddings the LM was trained on, and a confident image becomes
    (nearly) a sequence of real tokens, which the LM reads the same way in every context it
    has seen in text; an unconstrained linear prefix can instead fit the captioning loss with
    vectors that only work in the contexts seen in training. E is passed in at call time,
    never stored, so the LM's weights are neither copied nor trained.
    """

    uses_tokens = False
    uses_vocabulary = True
    initial_sharpness = 10.0

    def __init__(self, feature_dim: int, lm_dim: int, num_tokens: int):
        super().__init__()
        self.num_tokens, self.lm_dim = num_tokens, lm_dim
        self.query = nn.Linear(feature_dim, num_tokens * lm_dim)
        self.log_sharpness = nn.Parameter(torch.tensor(math.log(self.initial_sharpness)))
        # Annealing multiplier of the sharpness, set by training (saved, so inference uses
        # the value training ended with).
        self.register_buffer("sharpness_scale", torch.tensor(1.0))

    def set_anneal(self, final_scale: float, progress: float) -> None:
        """Sharpness x final_scale ** progress (progress 0 -> 1 over a run): soft mixtures early
        for the search, (nearly) real tokens by the end."""
        self.sharpness_scale.fill_(float(final_scale) ** min(max(progress, 0.0), 1.0))

    def forward(self, pooled: torch.Tensor, embeddings: torch.Tensor,
                slot_mask: torch.Tensor | None = None) -> torch.Tensor:
        # pooled (N, F), embeddings (V, D) in the LM's dtype (matmuls stay in it: no fp32 copy
        # of a large vocabulary per step); the softmax is taken in float32. slot_mask (n, V),
        # if given, says which tokens each slot may mix.
        query = F.normalize(self.query(pooled).view(-1, self.num_tokens, self.lm_dim), dim=-1)
        keys = F.normalize(embeddings, dim=-1)                              # (V, D)
        cosine = query.to(embeddings.dtype) @ keys.T                        # (N, n, V)
        sharpness = self.log_sharpness.exp() * self.sharpness_scale
        logits = cosine.float() * sharpness                                 # (N, n, V)
        if slot_mask is not None:
            logits = logits.masked_fill(~slot_mask, float("-inf"))
        weights = logits.softmax(-1)                                        # (N, n, V)
        return (weights.to(embeddings.dtype) @ embeddings).float()          # (N, n, D)


PREFIX_HEADS: dict[str, type[nn.Module]] = {
    "linear": LinearPrefixHead, "mlp": MLPPrefixHead, "vocabulary": VocabularyPrefixHead}
assert tuple(PREFIX_HEADS) == config.PREFIX_HEADS, "config.PREFIX_HEADS lists the heads by name"


def build_prefix_head(cfg: FrozenConfig, tower: VisionTower, lm_dim: int) -> nn.Module:
    head_cls = PREFIX_HEADS[cfg.prefix_head]
    if head_cls.uses_tokens:
        if tower.token_dim is None:
            raise ValueError(f"prefix_head {cfg.prefix_head!r} needs patch tokens, but the tower "
                             f"{cfg.vision!r} gives only a pooled feature; use prefix_head='linear'")
        tower.module.output_tokens = True
        return head_cls(tower.token_dim, lm_dim, cfg.num_prefix_tokens)
    return head_cls(tower.feature_dim, lm_dim, cfg.num_prefix_tokens)


def tower_features(tower: nn.Module, pixel_values: torch.Tensor, tokens: bool) -> torch.Tensor:
    """Run the tower: pooled (N, F), or patch tokens (N, P, W) when `tokens`."""
    out = tower(pixel_values)
    if isinstance(out, tuple):
        pooled, patch_tokens = out
        return patch_tokens if tokens else pooled
    return out
