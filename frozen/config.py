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
PREFIX_HEADS = ("linear", "mlp", "vocabulary")  # implemented in vision.PREFIX_HEADS


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
    prefix_head: "linear" (pooled feature -> n x D, as in Frozen) or "mlp" (patch tokens,
        LLaVA-style; n is then the number of patch tokens kept after pooling) or "vocabulary"
        (soft tokens: each prefix is a learned mixture of the LM's own token embeddings).
    prefix_norm: rescale each prefix embedding to the typical norm of the LM's own token
        embeddings, so a learned prefix lives at the scale the LM expects (the "vocabulary"
        head is at that scale by construction and is not rescaled).
    prefix_vocabulary: for the "vocabulary" head, the tokens its mixtures are drawn from (e.g.
        an LM's dedicated image tokens): one list shared by every prefix slot, or one list per
        slot (num_prefix_tokens lists), so that slot i only ever becomes one of its own
        tokens; None draws from the whole vocabulary.
    prefix_anneal: for the "vocabulary" head, training multiplies its softmax sharpness by
        prefix_anneal ** (step / total steps), so the mixtures end as (nearly) real tokens;
        1 turns it off.
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
    prefix_vocabulary: list[str] | list[list[str]] | None = None
    prefix_anneal: float = 1.0
    dtype: str = "float32"
    image_size: int | None = None
    pad_value: int = 0
    lm_device: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def _checked_vocabulary(self, vocabulary: Any) -> list[str] | list[list[str]]:
        """A flat list of >= 2 tokens, or num_prefix_tokens such lists (one per slot)."""
        def token_list(tokens: Any, what: str) -> list[str]:
            if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)) or len(tokens) < 2 \
                    or not all(isinstance(t, str) for t in tokens):
                raise ValueError(f"FrozenConfig.prefix_vocabulary{what} must be a list of at least "
                                 f"2 tokens, got {tokens!r}")
            return list(tokens)

        if isinstance(vocabulary, (list, tuple)) and vocabulary \
                and all(isinstance(v, (list, tuple)) for v in vocabulary):
            if len(vocabulary) != int(self.num_prefix_tokens):
                raise ValueError(f"FrozenConfig.prefix_vocabulary has {len(vocabulary)} per-slot "
                                 f"lists but num_prefix_tokens is {self.num_prefix_tokens}: give "
                                 "one list per slot, or one flat list shared by all slots")
            return [token_list(v, f"[{i}]") for i, v in enumerate(vocabulary)]
        return token_list(vocabulary, "")

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
        if self.prefix_head not in PREFIX_HEADS:
            raise ValueError(f"FrozenConfig.prefix_head must be one of {PREFIX_HEADS}, got "
                             f"{self.prefix_head!r}{did_you_mean(self.prefix_head, PREFIX_HEADS)}")
        if self.prefix_vocabulary is not None:
            if self.prefix_head != "vocabulary":
                raise ValueError("FrozenConfig.prefix_vocabulary is only used by prefix_head="
                                 f"'vocabulary', not {self.prefix_head!r}")
            self.prefix_vocabulary = self._checked_vocabulary(self.prefix_vocabulary)
        if float(self.prefix_anneal) < 1:
            raise ValueError(f"FrozenConfig.prefix_anneal must be >= 1, got {self.prefix_anneal}")
        if float(self.prefix_anneal) != 1 and self.prefix_head != "vocabulary":
            raise ValueError("FrozenConfig.prefix_anneal is only used by prefix_head="
                             f"'vocabulary', not {self.prefix_head!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"FrozenConfig.dtype must be one of {DTYPES}, got {self.dtype!r}"
                             f"{did_you_mean(self.dtype, DTYPES)}")
        if self.image_size is not None and int(self.image_size) < 8:
            raise ValueError(f"FrozenConfig.image_size must be >= 8 pixels, got {self.image_size}")
        if not 0 <= int(self.pad_value) <= 255:
            raise ValueError(f"FrozenConfig.pad_value must be in 0..255, got {self.pad_value}")
        if self.vision_embed_dim < 1:
            raise ValueError(f"FrozenConfig.vision_embed_dim must be >= 1, got {self.vision_embed_dim}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FrozenConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown FrozenConfig field(s): {', '.join(unknown)}"
                             f"{did_you_mean(unknown[0], sorted(known))}")
        return cls(**data)
