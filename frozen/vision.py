"""The trainable image tower: an open_clip vision tower and what the rest of the system needs
to know about it (resolution, feature widths, normalisation). The prefix heads that turn its
features into prefix embeddings live in `frozen.heads`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

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


def tower_features(tower: nn.Module, pixel_values: torch.Tensor, tokens: bool) -> torch.Tensor:
    """Run the tower: pooled (N, F), or patch tokens (N, P, W) when `tokens`."""
    out = tower(pixel_values)
    if isinstance(out, tuple):
        pooled, patch_tokens = out
        return patch_tokens if tokens else pooled
    return out
