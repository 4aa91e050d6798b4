"""Attributes of a shapes-world image, their sampling, and the renderer.

An image is 64 x 64 RGB: a uniform gray background (R = G = B = g, g in [215, 255])
and exactly one filled shape. All random draws are integers from a numpy
``Generator``; every sampling function takes ``rng`` as a Generator or a seed.

Held-out color-shape pairs (purple triangle, yellow diamond) never come out of the
"train" split, so no training image shows them in any size or position.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
BACKGROUND_RANGE = (215, 255)  # inclusive
COLOR_JITTER = 15  # each channel jittered by an integer in [-15, 15]

SIZES = ("small", "big")
COLORS = ("red", "green", "blue", "yellow", "purple")
SHAPES = ("circle", "square", "triangle", "diamond")
POSITIONS = ("left", "right")

BASE_RGB = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (225, 195, 30),
    "purple": (140, 60, 190),
}
RADIUS_RANGE = {"small": (5, 8), "big": (13, 16)}  # inclusive
CENTER_X_RANGE = {"left": (18, 24), "right": (40, 46)}  # inclusive
CENTER_Y_RANGE = (18, 46)  # inclusive

HELD_OUT = frozenset({("purple", "triangle"), ("yellow", "diamond")})
"""(color, shape) pairs never shown in a training image."""

Split = Literal["train", "heldout", "any"]


@dataclass(frozen=True, order=True)
class Attributes:
    """What a caption says about an image."""

    size: str
    color: str
    shape: str
    position: str

    def __post_init__(self) -> None:
        for field, allowed in (
            ("size", SIZES),
            ("color", COLORS),
            ("shape", SHAPES),
            ("position", POSITIONS),
        ):
            if getattr(self, field) not in allowed:
                raise ValueError(f"Attributes.{field}={getattr(self, field)!r}: expected one of {allowed}")

    @property
    def is_held_out(self) -> bool:
        return (self.color, self.shape) in HELD_OUT


ALL_ATTRIBUTES: tuple[Attributes, ...] = tuple(
    Attributes(size, color, shape, position)
    for size, color, shape, position in itertools.product(SIZES, COLORS, SHAPES, POSITIONS)
)
"""The 80 attribute combinations."""

_SPLITS: dict[str, tuple[Attributes, ...]] = {
    "train": tuple(a for a in ALL_ATTRIBUTES if not a.is_held_out),
    "heldout": tuple(a for a in ALL_ATTRIBUTES if a.is_held_out),
    "any": ALL_ATTRIBUTES,
}


@dataclass(frozen=True)
class Scene:
    """Everything needed to draw one image: attributes plus the drawn geometry and colors."""

    attributes: Attributes
    background: int  # gray level g, R = G = B = g
    rgb: tuple[int, int, int]  # jittered, clipped fill color
    radius: int
    cx: int
    cy: int


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A numpy Generator from a Generator (returned as is), a seed, or None (fresh entropy)."""
    return np.random.default_rng(rng)


def split_attributes(split: Split = "train") -> tuple[Attributes, ...]:
    """The attribute combinations of a split: "train" (72), "heldout" (8) or "any" (80)."""
    if split not in _SPLITS:
        raise ValueError(f"split={split!r}: expected one of {tuple(_SPLITS)}")
    return _SPLITS[split]


def sample_attributes(
    rng: np.random.Generator | int | None,
    split: Split = "train",
    *,
    shape: str | None = None,
) -> Attributes:
    """Uniformly sample one attribute combination of ``split``, optionally with a fixed shape."""
    pool = split_attributes(split)
    if shape is not None:
        pool = tuple(a for a in pool if a.shape == shape)
        if not pool:
            raise ValueError(f"shape={shape!r}: no attribute combination in split {split!r}")
    return pool[int(as_rng(rng).integers(len(pool)))]


def _integer(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    low, high = bounds
    return int(rng.integers(low, high + 1))


def sample_scene(rng: np.random.Generator | int | None, attributes: Attributes) -> Scene:
    """Draw the background gray, color jitter, radius and center for ``attributes``.

    Draw order: background, jitter (R, G, B), radius, cx, cy.
    """
    rng = as_rng(rng)
    background = _integer(rng, BACKGROUND_RANGE)
    jitter = rng.integers(-COLOR_JITTER, COLOR_JITTER + 1, size=3)
    rgb = tuple(int(c) for c in np.clip(np.array(BASE_RGB[attributes.color]) + jitter, 0, 255))
    radius = _integer(rng, RADIUS_RANGE[attributes.size])
    cx = _integer(rng, CENTER_X_RANGE[attributes.position])
    cy = _integer(rng, CENTER_Y_RANGE)
    return Scene(attributes, background, rgb, radius, cx, cy)


def render(scene: Scene) -> Image.Image:
    """Draw ``scene`` as a 64 x 64 RGB image."""
    g = scene.background
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (g, g, g))
    draw = ImageDraw.Draw(image)
    cx, cy, r = scene.cx, scene.cy, scene.radius
    shape = scene.attributes.shape
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=scene.rgb)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=scene.rgb)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=scene.rgb)
    else:  # diamond
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=scene.rgb)
    return image


def render_attributes(attributes: Attributes, rng: np.random.Generator | int | None) -> Image.Image:
    """A fresh random render of ``attributes``."""
    return render(sample_scene(rng, attributes))


def black_image() -> Image.Image:
    """The all-black 64 x 64 image of the blind baseline."""
    return Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (0, 0, 0))
