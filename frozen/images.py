"""Image loading and preprocessing: any reasonable input to an RGB picture, then Frozen's
pad-to-square + resize into a uint8 (3, S, S) tensor, normalised later on the model's device.

Odd but valid images (CMYK, RGBA, palette, 16-bit, grayscale, 1 pixel) are converted; images
that cannot be read, or that are too large to decode safely, raise ImageError naming the problem.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps

# Images above this many pixels are refused before decoding (PIL's own bomb limit).
MAX_PIXELS = 89_478_485

# open_clip's default normalisation (OpenAI CLIP statistics).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ImageError(ValueError):
    """An image that cannot be used, with the reason in the message.

    kind: "missing" (no such file), "empty", "unreadable" (not an image), "truncated"
    (cut short or corrupt while decoding), "too_large" (over the pixel limit), "no_pixels".
    """

    KINDS = ("missing", "empty", "unreadable", "truncated", "too_large", "no_pixels")

    def __init__(self, message: str, kind: str = "unreadable"):
        assert kind in self.KINDS, kind
        super().__init__(message)
        self.kind = kind


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"image {str(source)!r}"
    if isinstance(source, (bytes, bytearray)):
        return f"image bytes ({len(source)} bytes)"
    return f"image {type(source).__name__}"


def _open(source: Any) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    what = "image bytes"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"image file not found: {str(path)!r}", "missing")
        what, source = f"image file {str(path)!r}", path.read_bytes()
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise ImageError(f"{what}: empty", "empty")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                return Image.open(io.BytesIO(source))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ImageError(f"{what}: too large to decode safely ({err})", "too_large") from None
        except Exception:  # PIL raises many types for garbage input; its message names a buffer
            raise ImageError(f"cannot read {what}: not a supported image file "
                             f"(PIL reads {_formats()})") from None
    raise ImageError(f"expected a PIL image, a file path or bytes, got {type(source).__name__}")


def _formats() -> str:
    """A short list of the formats PIL can open here."""
    Image.init()
    common = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
    return ", ".join(f for f in common if f in Image.OPEN) + ", ..."


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (transparent areas become black); RGB as it is."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I") and arr.max(initial=0) > 255 else 255.0
        arr = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def load_image(source: Any, draft_size: int | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Return an RGB PIL image from a PIL image, a path or encoded bytes.

    draft_size: when set and the source is a JPEG at least twice that size, decode at reduced
    resolution (PIL's `draft`), which is much faster and loses nothing after the resize.
    """
    img = _open(source)
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageError(f"{_describe(source)} has no pixels ({width}x{height})", "no_pixels")
    if width * height > max_pixels:
        raise ImageError(f"{_describe(source)} is too large: {width}x{height} pixels is over the "
                         f"limit of {max_pixels} (a decompression bomb, or set max_pixels)",
                         "too_large")
    try:
        if draft_size and img.format == "JPEG" and min(width, height) >= 2 * draft_size:
            img.draft("RGB", (draft_size, draft_size))
        img.load()
        if img.getexif().get(ExifTags.Base.Orientation, 1) != 1:    # else exif_transpose copies
            img = ImageOps.exif_transpose(img)
        return _to_rgb(img)
    except ImageError:
        raise
    except Exception as err:
        raise ImageError(f"cannot decode {_describe(source)}: truncated or corrupt ({err})",
                         "truncated") from None


def pad_to_square(img: Image.Image, pad_value: int = 0) -> Image.Image:
    """Centre the image on a square canvas of its longer side (Frozen zero-pads)."""
    width, height = img.size
    if width == height:
        return img
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), (pad_value,) * 3)
    canvas.paste(img, ((side - width) // 2, (side - height) // 2))
    return canvas


@dataclass(frozen=True)
class ImageTransform:
    """Picklable image -> uint8 tensor (3, size, size) for data-loader workers, and the
    normalisation the model applies to a batch of them."""

    size: int
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    pad_value: int = 0
    max_pixels: int = MAX_PIXELS

    def __call__(self, source: Any) -> torch.Tensor:
        """Image (PIL, path or bytes) -> uint8 (3, S, S). Bytes, not floats, cross the worker
        boundary (4x less to copy); `normalize` turns a batch into the tower's input on its
        device."""
        return self.pixels(load_image(source, draft_size=self.size, max_pixels=self.max_pixels))

    def pixels(self, picture: Image.Image) -> torch.Tensor:
        """An RGB picture (what load_image gives) -> uint8 (3, S, S): pad to square, resize."""
        img = fit_square(picture, self.size, self.pad_value)
        arr = np.asarray(img, dtype=np.uint8)                       # (S, S, 3)
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))  # (3, S, S)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, S, S) -> float (N, 3, S, S) with the tower's mean and std."""
        mean = torch.tensor(self.mean, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=pixels.device).view(1, 3, 1, 1)
        return (pixels.float() / 255.0 - mean) / std


def fit_square(img: Image.Image, size: int, pad_value: int = 0) -> Image.Image:
    """Pad to square and resize to size x size, in the cheaper order: resize the image so its
    longer side is `size`, then centre it on the padded canvas (same picture as padding first)."""
    if img.size == (size, size):
        return img
    img = scale_longer_side(img, size)
    return pad_to_square(img, pad_value) if img.width != img.height else img


def scale_longer_side(img: Image.Image, size: int) -> Image.Image:
    """Resize (bicubic) so the longer side is `size`, keeping the aspect ratio."""
    width, height = img.size
    scale = size / max(width, height)
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    return img if new == (width, height) else img.resize(new, Image.BICUBIC, reducing_gap=3.0)
