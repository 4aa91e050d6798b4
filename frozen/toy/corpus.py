"""The deterministic text corpus the shapes-world language model is pretrained on.

Every image is replaced by its text stand-in (``standins.standin``), so the corpus
holds the prompt formats of ``prompts`` as plain text: zero-shot plain captioning,
style k-shot, instruction k-shot and fast-binding episodes. A document is a list of
``Segment``s; each is tokenized on its own, exactly as a prompt's items are (segments
split text only where the tokenizer splits it anyway), and only
``target`` segments carry the language-modelling loss:

- stand-ins never do (an image's content is not predictable from text);
- the first caption of a non-plain style sequence does not (its style is not yet
  shown), so a lone image is always continued with its plain caption (format 1);
- instructions and the introductions of fast-binding names do not; a later
  demonstration of an already named shape does (a binding test of its own);
- captions, the fast-binding answer and the end of sequence do.

Beside the formats:

- "shape question" documents answer an image with its shape word after a fast-binding
  phrase;
- "copy" documents are a random sequence of the corpus's words and stand-ins written
  twice, the loss on the second's words: the plain induction task (find where the current
  token appeared before, continue from there), the look-up-and-copy circuit that fast
  binding is built on;
- "direct binding" documents are fast-binding episodes without the phrase
  (``<image> dax.``): the name follows the image's last stand-in, so a recall is that
  same induction keyed on a stand-in.

Without the last two, the shapes LM formed fast binding for 1 base seed of 3 tried;
with them for more seeds, but not for all (``build_lm``'s closing check says).
Held-out color-shape pairs appear like every other pair.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from frozen.toy.captions import STYLES, caption
from frozen.toy.prompts import BINDING_QUERY, NONCE_WORDS, bind_names, binding_demo, instruction
from frozen.toy.render import ALL_ATTRIBUTES, Attributes, as_rng, sample_attributes
from frozen.toy.standins import STANDIN_TOKENS, standin

IMAGE, CONTEXT, TARGET = "image", "context", "target"
STANDIN_PATTERN = re.compile(r"<\|[^|]+\|>")


@dataclass(frozen=True)
class Segment:
    """A piece of a document: a stand-in (``image``), or text with or without loss."""

    text: str
    role: str  # IMAGE | CONTEXT | TARGET


Document = list[Segment]


@dataclass(frozen=True)
class CorpusMix:
    """How often each kind of document appears, and how long its sequences are."""

    caption: float = 0.05  # format 1: one image, plain caption
    style: float = 0.12  # format 2 (plain sequences included: interleaved captioning)
    instruction: float = 0.08  # format 3
    binding: float = 0.55  # format 4 (short documents: many per batch)
    shape_question: float = 0.20  # an image's shape word after a binding phrase
    direct_binding: float = 0.15  # fast binding without the phrase: <image> dax.
    copy: float = 0.15  # a random sequence of words and stand-ins, then the same again
    max_style_shots: int = 5
    max_instruction_shots: int = 4
    binding_ways: tuple[int, ...] = (2, 2, 3, 4)  # drawn uniformly
    max_binding_recalls: int = 2  # recalls per fast-binding document, drawn from 1..max
    max_direct_recalls: int = 4  # recalls per direct-binding document, drawn from 1..max
    shuffle_standins: float = 0.0  # chance that an image's stand-ins are written in a random order
    kinds: tuple[str, ...] = field(
        default=("caption", "style", "instruction", "binding", "shape_question", "direct_binding", "copy"),
        init=False,
    )

    def __post_init__(self) -> None:
        for kind in self.kinds:
            if getattr(self, kind) < 0:
                raise ValueError(f"CorpusMix.{kind}={getattr(self, kind)}: must be >= 0")
        if self.total <= 0:
            raise ValueError("CorpusMix: the weights sum to zero")
        if not 0 <= self.shuffle_standins <= 1:
            raise ValueError(f"CorpusMix.shuffle_standins={self.shuffle_standins}: a chance, must be "
                             "in [0, 1]")

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


def binding_document(rng: np.random.Generator, ways: int, recalls: int) -> Document:
    """Format 4: ``ways`` nonce names bound to shapes, then ``recalls`` recalls.

    The ways are introduced in random order (``<image>this is a {name}.``, no loss: the
    name is not predictable yet); each recall shows a new image of a bound shape and is
    either a demonstration (its whole text carries the loss) or the question of the
    contract (``<image>Q: what is this? A: this is a`` + `` {name}.``). The document ends
    with a question, as the contract's episode does.
    """
    names, shapes = bind_names(rng, ways)
    document: Document = []
    for way in rng.permutation(ways):
        document += [_image(sample_attributes(rng, "any", shape=shapes[way])),
                     Segment(binding_demo(names[way]), CONTEXT)]
    for index in range(recalls):
        way = int(rng.integers(ways))
        last = index == recalls - 1
        document.append(_image(sample_attributes(rng, "any", shape=shapes[way])))
        if last or rng.random() < 0.5:
            newline = "" if last else "\n"
            document += [Segment(BINDING_QUERY, CONTEXT), Segment(f" {names[way]}.{newline}", TARGET)]
        else:
            document.append(Segment(binding_demo(names[way]), TARGET))
    return document


def shape_question_document(rng: np.random.Generator, images: int) -> Document:
    """Images answered with their shape word: ``<image>this is a circle.`` or the question.

    These teach the text right after an image to read the image's shape, the first half
    of fast binding, with a direct signal (no nonce names here).
    """
    document: Document = []
    for index in range(images):
        attributes = sample_attributes(rng, "any")
        newline = "\n" if index < images - 1 else ""
        phrase = BINDING_QUERY if rng.random() < 0.5 else "this is a"
        document += [_image(attributes), Segment(phrase, CONTEXT), Segment(f" {attributes.shape}.{newline}", TARGET)]
    return document


def direct_binding_document(rng: np.random.Generator, ways: int, recalls: int) -> Document:
    """``ways`` nonce names bound to shapes as ``<image> {name}.``, then ``recalls`` more
    images of bound shapes with their names. A name carries the loss from its second
    appearance on, when the image's shape stand-in (right before it) says which it is."""
    names, shapes = bind_names(rng, ways)
    order = [int(way) for way in rng.permutation(ways)] + [int(rng.integers(ways)) for _ in range(recalls)]
    document: Document = []
    named: set[int] = set()
    for way in order:
        document += [_image(sample_attributes(rng, "any", shape=shapes[way])),
                     Segment(f" {names[way]}.\n", TARGET if way in named else CONTEXT)]
        named.add(way)
    return document


@functools.cache
def corpus_words() -> tuple[str, ...]:
    """Every word of the corpus's captions, instructions and names (lower case, letters only)."""
    return tuple(sorted({word for text in vocabulary_texts() for word in re.findall(r"[^\W\d_]+", text.lower())}))


def copy_document(rng: np.random.Generator, standin_chance: float = 0.3) -> Document:
    """4 to 11 random items, then the same items again, the words with the loss. The last item
    is a word; any other is a random stand-in (chance ``standin_chance``) or a corpus word, so
    the copy is also keyed on stand-ins: a word right after a stand-in is found by it."""
    words = corpus_words()
    items = []
    length = int(rng.integers(4, 12))
    for index in range(length):
        if index < length - 1 and rng.random() < standin_chance:     # it ends with a word
            items.append(STANDIN_TOKENS[int(rng.integers(len(STANDIN_TOKENS)))])
        else:
            items.append(words[int(rng.integers(len(words)))])

    def written(role: str) -> Document:
        # Consecutive words form one segment, so segment-wise tokenization equals the whole text's.
        segments: Document = []
        for item in items:
            if item in STANDIN_TOKENS:
                segments.append(Segment(item, IMAGE))
            elif segments and segments[-1].role == role:
                segments[-1] = Segment(f"{segments[-1].text} {item}", role)
            else:
                segments.append(Segment(f" {item}", role))
        return segments

    return written(CONTEXT) + [Segment("\n", CONTEXT)] + written(TARGET)


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
    if kind == "direct_binding":
        ways = int(rng.choice(mix.binding_ways))
        return direct_binding_document(rng, ways, int(rng.integers(1, mix.max_direct_recalls + 1)))
    if kind == "copy":
        return copy_document(rng)
    if kind == "shape_question":
        return shape_question_document(rng, int(rng.integers(1, 4)))
    ways = int(rng.choice(mix.binding_ways))
    return binding_document(rng, ways, int(rng.integers(1, mix.max_binding_recalls + 1)))


def shuffled_standins(document: Document, rng: np.random.Generator,
                      chance: float = 1.0) -> Document:
    """``document`` with the stand-in tokens of each image, with probability ``chance``, in a
    random order. With chance 1 an image is a set of tokens, so any prefix slot may carry any
    attribute; below 1 the LM still reads any order but prefers the written one (size, color,
    position, shape). At chance 0 or 1 no draw decides, so those streams stay as they were."""
    if chance <= 0:
        return document
    shuffled = []
    for segment in document:
        if segment.role == IMAGE and (chance >= 1 or rng.random() < chance):
            tokens = STANDIN_PATTERN.findall(segment.text)
            segment = Segment("".join(tokens[i] for i in rng.permutation(len(tokens))), IMAGE)
        shuffled.append(segment)
    return shuffled


def documents(seed: int, mix: CorpusMix = CorpusMix()) -> Iterator[Document]:
    """The endless, deterministic stream of documents of corpus ``seed``."""
    rng = as_rng(seed)
    order_rng = as_rng(seed + 1_000_003)        # its own stream: the documents stay the same
    while True:
        document = sample_document(rng, mix)
        yield shuffled_standins(document, order_rng, mix.shuffle_standins)


def document_text(document: Document) -> str:
    """The document as one string (stand-ins included)."""
    return "".join(segment.text for segment in document)


def vocabulary_texts() -> list[str]:
    """Every caption, instruction and fast-binding string: what the tokenizer must cover."""
    texts = [caption(a, style) for a in ALL_ATTRIBUTES for style in STYLES]
    texts += [f"{instruction(style)} {caption(ALL_ATTRIBUTES[0], style)}\n" for style in STYLES]
    texts += [f"this is a {name}.\n{BINDING_QUERY} {name}." for name in NONCE_WORDS]
    return texts
