"""The shapes world's scores (toy-world contract), on freshly rendered images.

Episodes come from `frozen.toy.prompts`, which owns the contract's exact prompt formats, so
these tasks set no templates. Every episode is drawn from its own generator seeded by
(task salt, trial seed, episode index): new seeds, away from any training data; the captioning
tasks draw the query's attributes first, so a trial asks about the same attributes at every
shot count. Scores are exact match, in percent.

    shapes-caption      zero-shot plain captioning (k > 0 shots: plain-style demonstrations)
    shapes-heldout      the same on the held-out color-shape pairs only
    shapes-style        style k-shot (k = 1, 2, 4), per style and averaged
    shapes-instruction  instruction k-shot ("Caption in {S}:"), per style and averaged
    shapes-binding      fast binding of nonce names, options.ways = 2 or 4 (shots = images per way)

Any of them with `blind: true` is the blind baseline.
"""

from __future__ import annotations

import zlib
from abc import abstractmethod
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ..errors import EvalError
from ..metrics.match import exact_match, mean_by_group
from ..queries import ImageRef, Query, Record
from ..selection import Selector
from .base import Task
from .registry import register

SPLITS = ("train", "heldout", "any")


class ShapesTask(Task):
    """An episode sampler of frozen.toy.prompts behind the Task interface."""

    metrics = ("exact_match",)
    defaults: dict[str, Any] = {"shots": [0], "max_queries": 100, "stop": ["\n"],
                                "decoding": {"max_new_tokens": 32}}
    option_defaults: dict[str, Any] = {"split": "train"}

    def __init__(self, settings):
        super().__init__(settings)
        for key in ("template", "query_template"):
            if getattr(settings, key):
                raise EvalError(f"task {self.name}: {key} cannot be set; the shapes world's prompt "
                                f"formats are fixed by its contract (frozen.toy.prompts)")
        if settings.zero_shot_text_demos:
            raise EvalError(f"task {self.name}: zero_shot_text_demos does not apply to the shapes world")
        self.salt = zlib.crc32(f"eval/{self.name}".encode())

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        options = super().check_options(options)
        if options.get("split") not in SPLITS:
            raise EvalError(f"task {cls.name}: options.split must be one of {', '.join(SPLITS)}")
        return options

    @abstractmethod
    def episode(self, rng: np.random.Generator, index: int, shots: int):
        """One frozen.toy.prompts.Episode."""

    def queries(self, shots: int, seed: int, selector: Selector | None) -> list[Query]:
        count = self.settings.max_queries or self.defaults["max_queries"]
        queries = []
        for i in range(count):
            episode = self.episode(np.random.default_rng([self.salt, seed, i]), i, shots)
            prompt, images = [], []
            for item in episode.prompt:
                if isinstance(item, Image.Image):
                    item = ImageRef(f"{self.name}/seed{seed}/shots{shots}/{i}/{len(images)}", pil=item)
                    images.append(item)
                prompt.append(item)
            attributes = episode.query
            queries.append(Query(
                id=str(i), prompt=prompt, references=[episode.answer], image=images[-1],
                group=self.group(episode),
                meta={"attributes": [attributes.size, attributes.color, attributes.shape, attributes.position]}))
        return queries

    def group(self, episode) -> str:
        return ""

    def read(self, output: str) -> str:
        from frozen.toy.prompts import read_caption

        return read_caption(output)

    def score(self, records: Sequence[Record]) -> dict[str, float]:
        values = [exact_match(r.prediction, r.references) for r in records]
        return mean_by_group("exact_match", values, [r.group for r in records])


@register
class ShapesCaption(ShapesTask):
    name = "shapes-caption"
    description = "Shapes world: zero-shot plain captioning, exact match"

    def episode(self, rng, index, shots):
        from frozen.toy.prompts import sample_caption_episode, sample_style_episode

        split = self.options["split"]
        if shots == 0:
            return sample_caption_episode(rng, split=split)
        return sample_style_episode(rng, "plain", shots, split=split)


@register
class ShapesHeldout(ShapesCaption):
    name = "shapes-heldout"
    description = "Shapes world: plain captioning of the held-out color-shape pairs, exact match"
    option_defaults = {"split": "heldout"}


class ShapesStyled(ShapesTask):
    """Captioning in a style; the episode's style cycles through options.styles."""

    defaults = {**ShapesTask.defaults, "shots": [1, 2, 4]}
    option_defaults = {"split": "train", "demo_split": "train", "styles": None}

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        from frozen.toy.captions import STYLES

        options = super().check_options(options)
        styles = options["styles"] or list(STYLES)
        unknown = [s for s in styles if s not in STYLES] if isinstance(styles, list) else [styles]
        if unknown:
            raise EvalError(f"task {cls.name}: unknown style(s) {unknown}; expected some of {', '.join(STYLES)}")
        if options["demo_split"] not in SPLITS:
            raise EvalError(f"task {cls.name}: options.demo_split must be one of {', '.join(SPLITS)}")
        return options

    def __init__(self, settings):
        from frozen.toy.captions import STYLES

        super().__init__(settings)
        self.styles = self.options["styles"] or list(STYLES)   # none given: every style

    def style(self, index: int) -> str:
        return self.styles[index % len(self.styles)]

    def group(self, episode) -> str:
        return episode.style


@register
class ShapesStyle(ShapesStyled):
    name = "shapes-style"
    description = "Shapes world: captioning in a style shown only by k demonstrations, per style"

    def episode(self, rng, index, shots):
        from frozen.toy.prompts import sample_style_episode

        return sample_style_episode(rng, self.style(index), shots, split=self.options["split"],
                                    demo_split=self.options["demo_split"])


@register
class ShapesInstruction(ShapesStyled):
    name = "shapes-instruction"
    description = "Shapes world: captioning with the instruction 'Caption in {S}:', k-shot, per style"

    def episode(self, rng, index, shots):
        from frozen.toy.prompts import sample_instruction_episode

        return sample_instruction_episode(rng, self.style(index), shots, split=self.options["split"],
                                          demo_split=self.options["demo_split"])


@register
class ShapesBinding(ShapesTask):
    name = "shapes-binding"
    description = "Shapes world: fast binding of nonce names to shapes, N-way (options.ways)"
    prompt_defines_answer = True
    defaults = {**ShapesTask.defaults, "shots": [1], "decoding": {"max_new_tokens": 4}}
    option_defaults = {"split": "train", "ways": 2}

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        options = super().check_options(options)
        ways = options["ways"]
        if not isinstance(ways, int) or not 2 <= ways <= 4:
            raise EvalError(f"task {cls.name}: options.ways must be 2, 3 or 4 (one shape per way), got {ways!r}")
        return options

    def episode(self, rng, index, shots):
        from frozen.toy.prompts import sample_binding_episode

        if shots < 1:
            raise EvalError(f"task {self.name}: shots are images per way here and must be >= 1")
        return sample_binding_episode(rng, self.options["ways"], shots_per_way=shots,
                                      split=self.options["split"])

    def read(self, output: str) -> str:
        from frozen.toy.prompts import read_word

        return read_word(output)
