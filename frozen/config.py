"""FrozenConfig: the plain-data description of a Frozen model (LM, vision tower, prefix head).

Names are strings resolved late (the LM by AutoModelForCausalLM, the tower by open_clip), so a
config is JSON-serialisable and is what `save_pretrained` writes next to the trainable weights.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Sequence

DTYPES = ("float32", "bfloat16", "float16")
# Fields of configs saved before head options moved into prefix_head_options: field -> option
# (None and 1.0 were their "unused" values, which every saved config wrote).
LEGACY_HEAD_FIELDS = {"prefix_vocabulary": ("vocabulary", None), "prefix_anneal": ("anneal", 1.0)}


def did_you_mean(value: Any, choices: Sequence[str]) -> str:
    """' (did you mean 'x'?)' for the choice closest to `value`, or ''."""
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass
class FrozenConfig:
    """What to build. Every field is validated in `__post_init__`; errors name the field.

    lm: a local Hugging Face model folder or a hub id, loaded with AutoModelForCausalLM.
    vision: an open_clip model name ("ViT-B-32"), a dict of open_clip vision-tower fields
        (CLIPVisionCfg, e.g. {"layers": [1, 1, 1, 1], "width": 16, "image_size": 64}), or None
        for a text-only model.
    vision_pretrained: an open_clip pretrained tag or a local checkpoint file for the tower.
    vision_embed_dim: width of the pooled feature when `vision` is a dict.
    num_prefix_tokens: n, the embeddings each image becomes (Frozen: 2).
    prefix_head: the name of a head in frozen/heads/ (frozen.heads.head_names()): "linear"
        (pooled feature -> n x D, as in Frozen), "mlp" (patch tokens, LLaVA-style; n is then
        the number of patch tokens kept after pooling), "vocabulary" (soft tokens: each prefix
        is a learned mixture of the LM's own token embeddings), ...
    prefix_head_options: the head's own options, checked by the head class (its docstring
        lists them), e.g. {"anneal": 100.0} for the "vocabulary" head.
    prefix_norm: rescale each prefix embedding to the typical norm of the LM's own token
        embeddings, so a learned prefix lives at the scale the LM expects (a head whose
        prefixes are token embeddings already, like "vocabulary", is not rescaled).
    dtype: the LM's dtype. The trainable side stays float32 (mixed precision casts it).
    image_size: input resolution; None takes the tower's own.
    pad_value: the gray level images are padded with to make them square (Frozen: 0).
    lm_device: build the LM from its config alone on this device, with random weights and no
        checkpoint read ("meta": no memory at all, for checking large configs).
    """

    lm: str
    vision: str | dict[str, Any] | None = "ViT-B-32"
    vision_pretrained: str | None = None
    vision_embed_dim: int = 512
    num_prefix_tokens: int = 2
    prefix_head: str = "linear"
    prefix_norm: bool = True
    prefix_head_options: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float32"
    image_size: int | None = None
    pad_value: int = 0
    lm_device: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.lm, str) or not self.lm.strip():
            raise ValueError("FrozenConfig.lm must be a local model folder or a hub id, got "
                             f"{self.lm!r}")
        if self.vision is not None and not isinstance(self.vision, (str, dict)):
            raise ValueError("FrozenConfig.vision must be an open_clip model name, a dict of "
                             f"vision-tower fields, or None; got {type(self.vision).__name__}")
        if isinstance(self.vision, str) and not self.vision.strip():
            raise ValueError("FrozenConfig.vision is an empty string; use None for text-only")
        if int(self.num_prefix_tokens) < 1:
            raise ValueError(f"FrozenConfig.num_prefix_tokens must be >= 1, got {self.num_prefix_tokens}")
        self._check_prefix_head()
        if self.dtype not in DTYPES:
            raise ValueError(f"FrozenConfig.dtype must be one of {DTYPES}, got {self.dtype!r}"
                             f"{did_you_mean(self.dtype, DTYPES)}")
        if self.image_size is not None and int(self.image_size) < 8:
            raise ValueError(f"FrozenConfig.image_size must be >= 8 pixels, got {self.image_size}")
        if not 0 <= int(self.pad_value) <= 255:
            raise ValueError(f"FrozenConfig.pad_value must be in 0..255, got {self.pad_value}")
        if self.vision_embed_dim < 1:
            raise ValueError(f"FrozenConfig.vision_embed_dim must be >= 1, got {self.vision_embed_dim}")

    def _check_prefix_head(self) -> None:
        from .heads import head_class, head_names     # imported here: heads import torch

        names = head_names()
        if self.prefix_head not in names:
            raise ValueError(f"FrozenConfig.prefix_head must be one of {names}, got "
                             f"{self.prefix_head!r}{did_you_mean(self.prefix_head, names)}")
        options = {} if self.prefix_head_options is None else self.prefix_head_options
        if not isinstance(options, dict):
            raise ValueError("FrozenConfig.prefix_head_options must be a dict of the head's "
                             f"options, got {type(options).__name__}")
        self.prefix_head_options = head_class(self.prefix_head).check_options(
            options, int(self.num_prefix_tokens))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FrozenConfig":
        data = _from_legacy_head_fields(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown FrozenConfig field(s): {', '.join(unknown)}"
                             f"{did_you_mean(unknown[0], sorted(known))}")
        return cls(**data)


def _from_legacy_head_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A config saved with the older top-level head fields (prefix_vocabulary, prefix_anneal,
    the never-used `extra`), in today's fields: the former move into prefix_head_options."""
    if not any(key in data for key in (*LEGACY_HEAD_FIELDS, "extra")):
        return data
    data = dict(data)
    data.pop("extra", None)
    options = dict(data.get("prefix_head_options") or {})
    for key, (option, unused) in LEGACY_HEAD_FIELDS.items():
        value = data.pop(key, unused)
        if value != unused:
            options[option] = value
    data["prefix_head_options"] = options
    return data
