"""One raw webdataset sample (img2dataset layout: KEY.jpg, KEY.txt, KEY.json) -> an
image-caption pair, or SampleSkipped naming what is wrong with it (its kind in SKIP_KINDS).

Decoding, pad-to-square and resize run in data-loader workers through the model's picklable
`image_transform` (the processor's), once per image; the decode limit on pixels guards against
decompression bombs.

Truncated or corrupt: PIL fails on both alike (and decodes some cut PNGs without complaint), so
cut-short image data is recognised before decoding by its format's own end: a JPEG has an
end-of-image marker after its last start-of-scan, a PNG an IEND chunk, a WebP the length its
RIFF header gives. Data of one of these formats without its end is `truncated_image`, whether
or not PIL could decode it; complete data that fails to decode is `corrupt_image`.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

import torch

from frozen.images import MAX_PIXELS, ImageError, ImageTransform, load_image

from .skips import SampleSkipped

IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")
CAPTION_KEY = "txt"

JPEG_START, JPEG_SCAN, JPEG_END = b"\xff\xd8\xff", b"\xff\xda", b"\xff\xd9"
PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"
RIFF_HEADER = 12     # b"RIFF" + little-endian size of what follows the first 8 bytes + b"WEBP"


@dataclasses.dataclass
class Pair:
    image: torch.Tensor    # (3, S, S) preprocessed
    caption: str
    key: str


def caption_of(sample: dict[str, Any]) -> str:
    raw = sample.get(CAPTION_KEY)
    if raw is None:
        raise SampleSkipped("missing_caption", f"no .{CAPTION_KEY} member")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")     # a byte-order mark is not part of the caption
        except UnicodeDecodeError as err:
            raise SampleSkipped("undecodable_caption", f".{CAPTION_KEY} is not UTF-8 ({err})") from None
    text = " ".join(str(raw).split())   # one line: newlines separate pairs in packed sequences
    if not text:
        raise SampleSkipped("empty_caption", f"empty .{CAPTION_KEY} member")
    return text


def cut_short(data: bytes) -> str | None:
    """Why these image bytes are cut short, or None when complete (or of another format)."""
    if not data:
        return "empty image data"
    if len(data) < len(PNG_START) and any(sig.startswith(data) for sig in (JPEG_START, PNG_START)):
        return "image data ends inside its signature"
    if data.startswith(JPEG_START):
        scan = data.rfind(JPEG_SCAN)
        if scan < 0 or data.find(JPEG_END, scan) < 0:
            return "JPEG data ends before its end-of-image marker"
    elif data.startswith(PNG_START):
        if data.rfind(PNG_END) < 0:
            return "PNG data ends before its IEND chunk"
    elif data.startswith(b"RIFF") or (len(data) < RIFF_HEADER and b"RIFF".startswith(data[:4])):
        if len(data) < RIFF_HEADER:
            return "image data ends inside its RIFF header"
        if data[8:12] == b"WEBP" and len(data) < 8 + struct.unpack("<I", data[4:8])[0]:
            return "WebP data ends before the length its RIFF header gives"
    return None


# ImageError kinds -> the pipeline's skip kinds (every other failure is a corrupt image).
_SKIP_KIND = {"too_large": "decompression_bomb"}


def image_of(sample: dict[str, Any], transform: ImageTransform,
             max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """Decode the sample's image and preprocess it: (3, S, S)."""
    data = next((sample[k] for k in IMAGE_KEYS if k in sample), None)
    if data is None:
        raise SampleSkipped("missing_image", f"no {'/'.join(IMAGE_KEYS)} member")
    return decode_image(data, transform, max_pixels)


def decode_image(data: bytes, transform: ImageTransform,
                 max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """Encoded image bytes -> preprocessed (3, S, S), or SampleSkipped naming the problem."""
    cut = cut_short(data)
    if cut is not None:
        raise SampleSkipped("truncated_image", f"{cut} ({len(data)} bytes)")
    try:
        picture = load_image(data, draft_size=transform.size, max_pixels=max_pixels)
        return transform.pixels(picture)                            # (3, S, S), decoded once
    except ImageError as err:
        raise SampleSkipped(_SKIP_KIND.get(err.kind, "corrupt_image"), str(err)) from None
    except Exception as err:  # a transform failing on odd input is a bad sample too
        raise SampleSkipped("corrupt_image", f"{type(err).__name__}: {err}") from None


def decode_pair(sample: dict[str, Any], transform: ImageTransform,
                max_pixels: int = MAX_PIXELS) -> Pair:
    caption = caption_of(sample)
    return Pair(image_of(sample, transform, max_pixels), caption, sample.get("__key__", "?"))
