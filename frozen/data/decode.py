"""One raw webdataset sample (img2dataset layout: KEY.jpg, KEY.txt, KEY.json) -> an
image-caption pair, or SampleSkipped naming what is wrong with it.

Decoding, pad-to-square and resize run in data-loader workers through the model's picklable
`image_transform`; the decode limit on pixels guards against decompression bombs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch

from frozen.images import MAX_PIXELS, ImageError, load_image

from .skips import SampleSkipped

IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")
CAPTION_KEY = "txt"


@dataclasses.dataclass
class Pair:
    image: torch.Tensor    # (3, S, S) preprocessed
    caption: str
    key: str


def caption_of(sample: dict[str, Any]) -> str:
    raw = sample.get(CAPTION_KEY)
    if raw is None:
        raise SampleSkipped("missing_caption", f"no .{CAPTION_KEY} member")
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    text = " ".join(text.split())   # one line: newlines separate pairs in packed sequences
    if not text:
        raise SampleSkipped("empty_caption", f"empty .{CAPTION_KEY} member")
    return text


# ImageError kinds -> the pipeline's skip kinds.
_SKIP_KIND = {"too_large": "decompression_bomb", "truncated": "truncated_image"}


def image_of(sample: dict[str, Any], transform: Callable[[Any], torch.Tensor],
             max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """Decode the sample's image and preprocess it: (3, S, S)."""
    data = next((sample[k] for k in IMAGE_KEYS if k in sample), None)
    if data is None:
        raise SampleSkipped("missing_image", f"no {'/'.join(IMAGE_KEYS)} member")
    return decode_image(data, transform, max_pixels)


def decode_image(data: bytes, transform: Callable[[Any], torch.Tensor],
                 max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """Encoded image bytes -> preprocessed (3, S, S), or SampleSkipped naming the problem."""
    try:
        picture = load_image(data, draft_size=getattr(transform, "size", None), max_pixels=max_pixels)
        return transform(picture)                                   # (3, S, S)
    except ImageError as err:
        raise SampleSkipped(_SKIP_KIND.get(err.kind, "corrupt_image"), str(err)) from None
    except Exception as err:  # a transform failing on odd input is a bad sample too
        raise SampleSkipped("corrupt_image", f"{type(err).__name__}: {err}") from None


def decode_pair(sample: dict[str, Any], transform: Callable[[Any], torch.Tensor],
                max_pixels: int = MAX_PIXELS) -> Pair:
    caption = caption_of(sample)
    return Pair(image_of(sample, transform, max_pixels), caption, sample.get("__key__", "?"))
