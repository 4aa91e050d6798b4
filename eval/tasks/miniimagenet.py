"""Frozen's open-ended miniImageNet: fast binding of nonce names to image classes.

Data: a folder of class subfolders of images (e.g. the 20 miniImageNet test classes). An
episode takes `ways` classes and binds each to a nonce name drawn without replacement; the
support shows `shots` (Frozen's "inner shots") images per class, each followed by its name, in
random order, repeated `repeats` more times (each time reshuffled); then a new image of one of
the classes and the question. Optional task induction puts "Answer with dax or blicket." first.
The answer is the first generated word (a trailing "." removed), compared lower-cased with the
bound name. Chance is 1 / ways.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Sequence

from ..errors import EvalError
from ..metrics.match import exact_match, mean_by_group
from ..queries import ImageRef, Query, Record
from ..selection import Selector
from ..templates import Template, join
from .base import Task, require_dir
from .registry import register

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
FROZEN_NAMES = ["dax", "blicket", "slation", "perpo", "shously"]


def read_word(output: str) -> str:
    """The first word of the first line, without a trailing '.', lower-cased."""
    words = output.split("\n", 1)[0].split()
    return words[0].rstrip(".,!?;:").lower() if words else ""


@register
class MiniImageNetBinding(Task):
    name = "miniimagenet"
    description = "Open-ended miniImageNet fast binding (Frozen): N-way nonce names, exact match"
    metrics = ("accuracy",)
    prompt_defines_answer = True
    defaults = {
        "shots": [1],
        "max_queries": 200,
        "template": "<image>This is a {name}.\n",
        "query_template": "<image>Q: What is this? A: This is a",
        "stop": ["\n"],
        "decoding": {"max_new_tokens": 5},
    }
    option_defaults = {"ways": 2, "repeats": 0, "task_induction": False, "names": FROZEN_NAMES,
                       "induction": "Answer with {names}.\n"}
    data_files = {"images": "."}

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        options = super().check_options(options)
        ways, names = options["ways"], options["names"]
        if not isinstance(ways, int) or ways < 2:
            raise EvalError(f"task {cls.name}: options.ways must be an integer >= 2, got {ways!r}")
        if not isinstance(names, list) or len(set(names)) < ways:
            raise EvalError(f"task {cls.name}: options.names must list at least {ways} distinct names")
        if not isinstance(options["repeats"], int) or options["repeats"] < 0:
            raise EvalError(f"task {cls.name}: options.repeats must be an integer >= 0")
        return options

    def __init__(self, settings):
        super().__init__(settings)
        self.template = Template(settings.template, "name", settings.query_template)
        self._classes: dict[str, list[Path]] | None = None

    def classes(self) -> dict[str, list[Path]]:
        """Class name -> its image files, sorted (so episodes do not depend on listing order)."""
        if self._classes is None:
            root = require_dir(self, "images", "class")
            self._classes = {
                d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                for d in sorted(root.iterdir()) if d.is_dir()
            }
            if not any(self._classes.values()):
                raise EvalError(f"task {self.name}: no class subfolders with images under {str(root)!r} "
                                f"(expected <root>/<class>/<image>.jpg)")
        return self._classes

    def prepare(self) -> None:
        self.classes()

    def stop_strings(self) -> list[str]:
        stops = ([self.template.stop] if self.template.stop else []) + list(self.settings.stop or [])
        return list(dict.fromkeys(stops))

    def queries(self, shots: int, seed: int, selector: Selector | None) -> list[Query]:
        ways = self.options["ways"]
        if shots < 1:
            raise EvalError(f"task {self.name}: shots are images per class here and must be >= 1")
        usable = sorted(c for c, files in self.classes().items() if len(files) >= shots + 1)
        if len(usable) < ways:
            raise EvalError(f"task {self.name}: {ways}-way episodes with {shots} shot(s) need {ways} "
                            f"class folders with at least {shots + 1} images each under "
                            f"{str(self.data['images'])!r}; found {len(usable)}")
        return [self.episode(random.Random(f"episode:{seed}:{shots}:{i}"), i, shots, usable)
                for i in range(self.settings.max_queries or 200)]

    def episode(self, rng: random.Random, index: int, shots: int, usable: list[str]) -> Query:
        ways = self.options["ways"]
        classes = rng.sample(usable, ways)
        names = rng.sample(list(self.options["names"]), ways)
        answer = rng.randrange(ways)
        support, query_image = [], None
        for way, (cls, name) in enumerate(zip(classes, names, strict=True)):
            files = rng.sample(self.classes()[cls], shots + (way == answer))
            if way == answer:
                query_image = files.pop()
            support += [(ImageRef(str(f), f), name) for f in files]
        blocks = []
        for _ in range(self.options["repeats"] + 1):
            rng.shuffle(support)
            blocks += [self.template.render_demo({"name": name}, image) for image, name in support]
        parts = []
        if self.options["task_induction"]:
            listed = ", ".join(names[:-1]) + " or " + names[-1]
            parts.append([self.options["induction"].replace("{names}", listed)])
        query = ImageRef(str(query_image), query_image)
        prompt = join(parts + blocks + [self.template.render_query({}, query)])
        return Query(id=f"episode{index}", prompt=prompt, references=[names[answer]], image=query,
                     meta={"classes": classes, "names": names, "answer_class": classes[answer]})

    def read(self, output: str) -> str:
        return read_word(output)

    def score(self, records: Sequence[Record]) -> dict[str, float]:
        values = [exact_match(r.prediction, [ref.lower() for ref in r.references]) for r in records]
        return mean_by_group("accuracy", values, [r.group for r in records])
