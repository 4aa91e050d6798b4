"""The text stand-in of an image: one dedicated token per attribute.

The shapes-world language model never sees pixels. In its pretraining text every
image is replaced by ``NUM_PREFIX_TOKENS`` = 4 stand-in tokens, in the order size,
color, position, shape, e.g. ``<|big|><|red|><|left|><|circle|>``. The shape comes
last, right before the text that names it in fast binding. Each stand-in is
a single special token of the tokenizer and is never part of a caption, so an image
is a modality of its own: the vision side learns to emit prefix embeddings that the
language model reads as these tokens.
"""

from __future__ import annotations

import numpy as np

from frozen.toy.render import COLORS, POSITIONS, SHAPES, SIZES, Attributes

SLOTS = ("size", "color", "position", "shape")
"""Attribute of each stand-in token, in order."""

SLOT_VALUES = {"size": SIZES, "color": COLORS, "shape": SHAPES, "position": POSITIONS}


def standin_token(value: str) -> str:
    """The stand-in token of one attribute value, e.g. ``"red"`` -> ``"<|red|>"``."""
    return f"<|{value}|>"


STANDIN_TOKENS: tuple[str, ...] = tuple(
    standin_token(value) for slot in SLOTS for value in SLOT_VALUES[slot]
)
"""All 13 stand-in tokens."""


def standin_tokens(attributes: Attributes) -> list[str]:
    """The 4 stand-in tokens of ``attributes`` (size, color, position, shape)."""
    return [standin_token(getattr(attributes, slot)) for slot in SLOTS]


def standin(attributes: Attributes, rng: np.random.Generator | int | None = None) -> str:
    """The stand-in text of an image of ``attributes``.

    ``rng`` is accepted and ignored, so ``standin`` can replace ``render_attributes``
    wherever an image maker ``(attributes, rng) -> item`` is expected.
    """
    return "".join(standin_tokens(attributes))
