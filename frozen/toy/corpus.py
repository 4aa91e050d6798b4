"""The deterministic text corpus the shapes-world language model is pretrained on.

Every image is replaced by its text stand-in (``standins.standin``), so the corpus
holds the prompt formats of ``prompts`` as plain text: zero-shot plain captioning,
style k-shot, instruction k-shot and fast-binding episodes. A document is a list of
``Segment``s; each is tokenized on its own, exactly as a prompt's items are, and only
``target`` segments carry the language-modelling loss:

- stand-ins never do (an image's content is not predictable from text);
- the first caption of a non-plain style sequence does not (its style is not yet
  shown), so a lone image is always continued with its plain caption (format 1);
- instructions and fast-binding demonstrations do not, except a demonstration name
  whose shape was already named earlier in the episode (a binding test of its own);
- captions, the fast-binding answer and the end of sequence do.

Held-out color-shape pairs appear in the text like every other pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from frozen.toy.captions import STYLES, caption
from frozen.toy.prompts import BINDING_QUERY, NONCE_WORDS, instruction
from frozen.toy.render import ALL_ATTRIBUTES, SHAPES, Attributes, as_rng, sample_attributes
from frozen.toy.standins import standin

IMAGE, CONTEXT, TARGET = "image", "context", "target"


@dataclass(frozen=True)
class Segment:
    """A piece of a document: a stand-in (``image``), or text with or without loss."""

    text: str
    role: str  # IMAGE | CONTEXT | TARGET


Document = list[Segment]


@dataclass(frozen=True)
class CorpusMix:
    """How often each kind of document appears, and how long its sequences are."""

    caption: float = 0.10  # format 1: one image, plain caption
    style: float = 0.30  # format 2 (plain sequences included: interleaved captioning)
    instruction: float = 0.20  # format 3
    binding: float = 0.40  # format 4
    max_style_shots: int = 6
    max_instruction_shots: int = 5
    binding_ways: tuple[int, ...] = (2, 3, 4)
    max_binding_tests: int = 6  # recalls per fast-binding document, drawn from 1..max
    kinds: tuple[str, ...] = field(default=("caption", "style", "instruction", "binding"), init=False)

    def __post_init__(self) -> None:
        for kind in self.kinds:
            if getattr(self, kind) < 0:
                raise ValueError(f"CorpusMix.{kind}={getattr(self, kind)}: must be >= 0")
        if self.total <= 0:
            raise ValueError("CorpusMix: the weights sum to zero")

    @property
    def total(self) -> float:
        return sum(getattr(self, kind) for kind in self.kinds)

    def probabilities(self) -> list[float]:
        return [getattr(self, kind) / self.total for kind in self.kinds]


def _image(attributes: Attributes) -> Segment:
    return Segment(standin(attributes), IMAGE)


def caption_document(rng: np.random.Generator) -> Document:
    """Format 1: ``<image>{plain caption}``."""
    query = sample_attributes(rng, "any")
    return [_image(query), Segment(caption(query), TARGET)]


def style_document(rng: np.random.Generator, style: str, images: int) -> Document:
    """Format 2 with ``images - 1`` demonstrations: captions in ``style`` after each image."""
    document: Document = []
    for i in range(images):
        attributes = sample_attributes(rng, "any")
        newline = "\n" if i < images - 1 else ""
        role = CONTEXT if i == 0 and style != "plain" else TARGET
        document += [_image(attributes), Segment(caption(attributes, style) + newline, role)]
    return document


def instruction_document(rng: np.random.Generator, style: str, images: int) -> Document:
    """Format 3 with ``images - 1`` demonstrations."""
    document: Document = []
    for i in range(images):
        attributes = sample_attributes(rng, "any")
        newline = "\n" if i < images - 1 else ""
        document += [
            _image(attributes),
            Segment(instruction(style), CONTEXT),
            Segment(f" {caption(attributes, style)}{newline}", TARGET),
        ]
    return document


def binding_document(rng: np.random.Generator, ways: int, tests: int) -> Document:
    """Format 4, densified: ``ways`` nonce names bound to shapes, then ``tests`` recalls.

    Each way is introduced once (``<image>this is a {name}.``, the name unpredictable, no
    loss); introductions come in random order, interleaved with recalls of ways already
    introduced, each either a demonstration (``<image>this is a {name}.``) or the
    question of the contract (``<image>Q: what is this? A: this is a {name}.``), whose
    name carries the loss. The document ends with a question, as the contract's episode.
    Several recalls per document give many binding targets per step.
    """
    names = [NONCE_WORDS[i] for i in rng.choice(len(NONCE_WORDS), size=ways, replace=False)]
    shapes = [SHAPES[i] for i in rng.choice(len(SHAPES), size=ways, replace=False)]
    pending = [int(way) for way in rng.permutation(ways)]
    introduced: list[int] = []
    recalls = tests - 1
    document: Document = []

    def statement(way: int, question: bool, role: str, newline: bool) -> None:
        document.extend([
            _image(sample_attributes(rng, "any", shape=shapes[way])),
            Segment(BINDING_QUERY if question else "this is a", CONTEXT),
            Segment(f" {names[way]}." + ("\n" if newline else ""), role),
        ])

    while pending or recalls > 0:
        if pending and (not introduced or recalls == 0 or rng.random() < 0.5):
            way = pending.pop()
            statement(way, question=False, role=CONTEXT, newline=True)
            introduced.append(way)
        else:
            recalls -= 1
            statement(introduced[int(rng.integers(len(introduced)))], bool(rng.random() < 0.5), TARGET, True)
    statement(introduced[int(rng.integers(len(introduced)))], question=True, role=TARGET, newline=False)
    return document


def sample_document(rng: np.random.Generator, mix: CorpusMix = CorpusMix()) -> Document:
    """One random document of the corpus."""
    kind = mix.kinds[int(rng.choice(len(mix.kinds), p=mix.probabilities()))]
    if kind == "caption":
        return caption_document(rng)
    if kind == "style":
        style = STYLES[int(rng.integers(len(STYLES)))]
        return style_document(rng, style, int(rng.integers(2, mix.max_style_shots + 2)))
    if kind == "instruction":
        style = STYLES[int(rng.integers(len(STYLES)))]
        return instruction_document(rng, style, int(rng.integers(1, mix.max_instruction_shots + 2)))
    ways = int(rng.choice(mix.binding_ways))
    return binding_document(rng, ways, int(rng.integers(1, mix.max_binding_tests + 1)))


def documents(seed: int, mix: CorpusMix = CorpusMix()) -> Iterator[Document]:
    """The endless, deterministic stream of documents of corpus ``seed``."""
    rng = as_rng(seed)
    while True:
        yield sample_document(rng, mix)


def document_text(document: Document) -> str:
    """The document as one string (stand-ins included)."""
    return "".join(segment.text for segment in document)


def vocabulary_texts() -> list[str]:
    """Every caption, instruction and fast-binding string: what the tokenizer must cover."""
    texts = [caption(a, style) for a in ALL_ATTRIBUTES for style in STYLES]
    texts += [f"{instruction(style)} {caption(ALL_ATTRIBUTES[0], style)}\n" for style in STYLES]
    texts += [f"this is a {name}.\n{BINDING_QUERY} {name}." for name in NONCE_WORDS]
    return texts
