"""Image loading: odd but valid images are converted; unreadable or unsafe ones are refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from frozen import ImageError, ImageTransform, load_image
from frozen.images import pad_to_square


def encoded(img: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt)
    return buffer.getvalue()


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (20, 10), (0, 255, 255, 0))            # pure red in CMYK
    img = load_image(encoded(cmyk, "JPEG"))
    assert img.mode == "RGB" and img.size == (20, 10)
    r, g, b = np.asarray(img).reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60


def test_rgba_transparent_areas_become_black():
    rgba = Image.new("RGBA", (8, 8), (255, 255, 255, 0))
    rgba.putpixel((0, 0), (0, 255, 0, 255))
    arr = np.asarray(load_image(encoded(rgba, "PNG")))
    assert arr[0, 0].tolist() == [0, 255, 0] and arr[4, 4].tolist() == [0, 0, 0]


def test_palette_with_transparency():
    pal = Image.new("P", (6, 6), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    assert np.asarray(load_image(encoded(pal, "PNG")))[0, 0].tolist() == [10, 20, 30]


def test_16bit_grayscale_is_scaled_not_clipped():
    arr16 = np.full((5, 5), 32768, dtype=np.uint16)
    img = load_image(encoded(Image.fromarray(arr16), "PNG"))
    value = np.asarray(img)[0, 0]
    assert img.mode == "RGB" and 120 <= value[0] <= 135


def test_one_pixel_image_is_usable():
    tensor = ImageTransform(32)(Image.new("RGB", (1, 1), (255, 0, 0)))
    assert tensor.shape == (3, 32, 32) and torch.isfinite(tensor).all()


def test_huge_image_refused_before_decoding(tmp_path):
    with pytest.raises(ImageError, match="too large"):
        load_image(Image.new("L", (200, 200)), max_pixels=1000)


def test_decompression_bomb_header_refused(tmp_path):
    bomb = encoded(Image.new("1", (12000, 12000)), "PNG")            # tiny file, 144M pixels
    with pytest.raises(ImageError, match="too large"):
        load_image(bomb)


def test_garbage_and_truncated_files(tmp_path):
    with pytest.raises(ImageError, match="cannot read image"):
        load_image(b"definitely not an image")
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(noise), "JPEG")
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(data[: int(len(data) * 0.7)])
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_pad_to_square_centres_with_pad_value():
    img = pad_to_square(Image.new("RGB", (4, 2), (255, 255, 255)), pad_value=0)
    arr = np.asarray(img)
    assert img.size == (4, 4) and arr[0, 0].tolist() == [0, 0, 0] and arr[1, 0].tolist() == [255] * 3


def test_transform_gives_bytes_and_normalises_batches():
    t = ImageTransform(16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = t(Image.new("RGB", (16, 8), (255, 0, 255)))
    assert out.shape == (3, 16, 16) and out.dtype == torch.uint8
    assert out[:, 8, 0].tolist() == [255, 0, 255] and out[:, 0, 0].tolist() == [0, 0, 0]  # padded
    normalised = t.normalize(out.unsqueeze(0))
    assert torch.allclose(normalised[0, :, 8, 0], torch.tensor([1.0, -1.0, 1.0]))
