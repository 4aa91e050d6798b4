"""The shapes world: the project's embedded default image-caption world.

A synthetic world small enough to train on two CPU cores in minutes: 64 x 64 images
of one colored shape on a gray background, captions in five styles, the prompt
formats of the evaluation (zero-shot captioning, style and instruction k-shot,
fast binding of nonce words, blind baseline), a text corpus in which every image is
replaced by a stand-in of ``NUM_PREFIX_TOKENS`` tokens, and the builder of the small
frozen language model shipped in ``assets/shapes-lm``.

Modules:
    render      attributes, their sampling (with the held-out pairs) and the renderer
    captions    the caption of an attribute set in each style
    standins    the text stand-in of an image (one token per attribute)
    prompts     the prompt formats, expected answers and answer readers
    corpus      the deterministic text corpus the language model is pretrained on
    tokenizer   the byte-level BPE tokenizer of the shipped language model
    build_lm    ``python -m frozen.toy.build_lm --out DIR``: tokenizer + LM pretraining
    check_lm    ``python -m frozen.toy.check_lm DIR``: text-only accuracy of an LM folder
"""

from pathlib import Path

from frozen.toy.captions import STYLES, caption
from frozen.toy.render import (
    ALL_ATTRIBUTES,
    COLORS,
    HELD_OUT,
    POSITIONS,
    SHAPES,
    SIZES,
    Attributes,
    Scene,
    black_image,
    render,
    render_attributes,
    sample_attributes,
    sample_scene,
)

SHAPES_LM_DIR = Path(__file__).parent / "assets" / "shapes-lm"
"""The shipped frozen language model of the shapes world (a Hugging Face model folder)."""

NUM_PREFIX_TOKENS = 4
"""Prefix embeddings per image in the shapes world: one per attribute of the stand-in."""

__all__ = [
    "ALL_ATTRIBUTES",
    "COLORS",
    "HELD_OUT",
    "NUM_PREFIX_TOKENS",
    "POSITIONS",
    "SHAPES",
    "SHAPES_LM_DIR",
    "SIZES",
    "STYLES",
    "Attributes",
    "Scene",
    "black_image",
    "caption",
    "render",
    "render_attributes",
    "sample_attributes",
    "sample_scene",
]
