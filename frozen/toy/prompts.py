"""The prompt formats of the shapes world, their expected answers and answer readers.

A prompt is a list of items: ``str`` text and images. An image item is whatever the
image maker returns: a ``PIL.Image`` (``render_attributes``), the all-black image of
the blind baseline, or a text stand-in (``standins.standin``) for text-only use.
Demonstrations are separated by a single ``"\\n"``.

Formats (exact strings, ``<image>`` marks an image item):
    1. zero-shot captioning  ``<image>``                       -> plain caption
    2. style k-shot          ``<image>{c1}\\n<image>{c2}\\n...<image>``  -> caption in the style
    3. instruction k-shot    ``<image>Caption in {S}: {c1}\\n...<image>Caption in {S}:``
    4. fast binding N-way    ``<image>this is a {name}.\\n`` per way, then
                             ``<image>Q: what is this? A: this is a``  -> the bound name
    5. blind baseline        any of the above with every image made black
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from frozen.toy.captions import STYLES, caption
from frozen.toy.render import (
    SHAPES,
    Attributes,
    Split,
    as_rng,
    black_image,
    render_attributes,
    sample_attributes,
    split_attributes,
)

Item = Any  # str text, or an image item (PIL.Image, a preprocessed tensor, or a stand-in str)
ImageMaker = Callable[[Attributes, np.random.Generator], Item]

NONCE_WORDS = ("dax", "blicket", "wug", "zib", "fep", "toma")
BINDING_QUERY = "Q: what is this? A: this is a"
TASKS = ("caption", "style", "instruction", "binding")


def instruction(style: str) -> str:
    """The instruction text before a caption in format 3, e.g. ``"Caption in pirate:"``."""
    if style not in STYLES:
        raise ValueError(f"style={style!r}: expected one of {STYLES}")
    return f"Caption in {style}:"


def binding_demo(name: str) -> str:
    """The text after a demonstration image in format 4, e.g. ``"this is a dax.\\n"``."""
    return f"this is a {name}.\n"


# ---- format builders: items in, prompt out ---------------------------------------------


def zero_shot_prompt(query: Item) -> list[Item]:
    """Format 1: the query image alone."""
    return [query]


def style_prompt(demos: Sequence[tuple[Item, str]], query: Item) -> list[Item]:
    """Format 2: ``(image, caption in style S)`` demonstrations, then the query image."""
    items: list[Item] = []
    for image, text in demos:
        items += [image, f"{text}\n"]
    return items + [query]


def instruction_prompt(demos: Sequence[tuple[Item, str]], query: Item, style: str) -> list[Item]:
    """Format 3: ``(image, caption in S)`` demonstrations each after ``Caption in S:``."""
    items: list[Item] = []
    for image, text in demos:
        items += [image, f"{instruction(style)} {text}\n"]
    return items + [query, instruction(style)]


def binding_prompt(demos: Sequence[tuple[Item, str]], query: Item) -> list[Item]:
    """Format 4: ``(image, nonce name)`` demonstrations, then the question on the query."""
    items: list[Item] = []
    for image, name in demos:
        items += [image, binding_demo(name)]
    return items + [query, BINDING_QUERY]


def blind(prompt: Sequence[Item]) -> list[Item]:
    """Format 5: ``prompt`` with every PIL image replaced by the all-black image."""
    return [black_image() if isinstance(item, Image.Image) else item for item in prompt]


# ---- answers ---------------------------------------------------------------------------


def read_caption(generated: str) -> str:
    """A generated caption: the text up to the first newline (or the end), stripped."""
    return generated.split("\n", 1)[0].strip()


def read_word(generated: str) -> str:
    """A generated fast-binding answer: the first word, without a trailing ``.``."""
    words = read_caption(generated).split()
    return words[0].removesuffix(".") if words else ""


@dataclass
class Episode:
    """One scored query: the prompt, what must come out of it, and how to read it."""

    task: str  # one of TASKS
    prompt: list[Item]
    answer: str
    query: Attributes
    style: str = "plain"
    shots: int = 0  # demonstrations in the prompt
    ways: int = 0  # fast binding only

    def read(self, generated: str) -> str:
        """The answer in a generated continuation."""
        return read_word(generated) if self.task == "binding" else read_caption(generated)

    def is_correct(self, generated: str) -> bool:
        """Exact match of the read answer."""
        return self.read(generated) == self.answer

    def blind(self) -> "Episode":
        """The same episode with every PIL image made black (format 5)."""
        return Episode(self.task, blind(self.prompt), self.answer, self.query, self.style, self.shots, self.ways)


# ---- episode samplers ------------------------------------------------------------------


def _demo_attributes(rng: np.random.Generator, query: Attributes, split: Split) -> Attributes:
    pool = [a for a in split_attributes(split) if a != query]
    return pool[int(rng.integers(len(pool)))]


def sample_caption_episode(
    rng: np.random.Generator | int | None,
    *,
    image: ImageMaker = render_attributes,
    split: Split = "train",
) -> Episode:
    """Format 1 on a random query of ``split``."""
    rng = as_rng(rng)
    query = sample_attributes(rng, split)
    return Episode("caption", zero_shot_prompt(image(query, rng)), caption(query), query)


def _sample_demos(
    rng: np.random.Generator, query: Attributes, shots: int, style: str, image: ImageMaker, demo_split: Split
) -> list[tuple[Item, str]]:
    demos = []
    for _ in range(shots):
        attributes = _demo_attributes(rng, query, demo_split)
        demos.append((image(attributes, rng), caption(attributes, style)))
    return demos


def sample_style_episode(
    rng: np.random.Generator | int | None,
    style: str,
    shots: int,
    *,
    image: ImageMaker = render_attributes,
    split: Split = "train",
    demo_split: Split = "train",
) -> Episode:
    """Format 2: ``shots`` demonstrations in ``style`` (attributes other than the query's)."""
    rng = as_rng(rng)
    query = sample_attributes(rng, split)
    demos = _sample_demos(rng, query, shots, style, image, demo_split)
    prompt = style_prompt(demos, image(query, rng))
    return Episode("style", prompt, caption(query, style), query, style, shots)


def sample_instruction_episode(
    rng: np.random.Generator | int | None,
    style: str,
    shots: int,
    *,
    image: ImageMaker = render_attributes,
    split: Split = "train",
    demo_split: Split = "train",
) -> Episode:
    """Format 3: ``shots`` instructed demonstrations in ``style``, then the instructed query."""
    rng = as_rng(rng)
    query = sample_attributes(rng, split)
    demos = _sample_demos(rng, query, shots, style, image, demo_split)
    prompt = instruction_prompt(demos, image(query, rng), style)
    return Episode("instruction", prompt, caption(query, style), query, style, shots)


def bind_names(rng: np.random.Generator, ways: int) -> tuple[list[str], list[str]]:
    """``ways`` distinct nonce names and ``ways`` distinct shapes; name i is bound to shape i."""
    names = [NONCE_WORDS[i] for i in rng.choice(len(NONCE_WORDS), size=ways, replace=False)]
    shapes = [SHAPES[i] for i in rng.choice(len(SHAPES), size=ways, replace=False)]
    return names, shapes


def sample_binding_episode(
    rng: np.random.Generator | int | None,
    ways: int,
    *,
    shots_per_way: int = 1,
    image: ImageMaker = render_attributes,
    split: Split = "train",
) -> Episode:
    """Format 4: ``ways`` nonce names bound to distinct shapes, demonstrations shuffled.

    The contract's task has one image per way (``shots_per_way=1``); each demonstration
    and the query show their shape with random color, size and position.
    """
    if not 1 <= ways <= len(SHAPES):
        raise ValueError(f"ways={ways}: expected 1..{len(SHAPES)}")
    rng = as_rng(rng)
    names, shapes = bind_names(rng, ways)
    bound = [(shape, name) for shape, name in zip(shapes, names) for _ in range(shots_per_way)]
    order = rng.permutation(len(bound))
    demos = []
    for index in order:
        shape, name = bound[index]
        demos.append((image(sample_attributes(rng, split, shape=shape), rng), name))
    answer_way = int(rng.integers(ways))
    query = sample_attributes(rng, split, shape=shapes[answer_way])
    prompt = binding_prompt(demos, image(query, rng))
    return Episode("binding", prompt, names[answer_way], query, shots=len(demos), ways=ways)
