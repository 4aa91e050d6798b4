"""Few-shot tasks over a fixed dataset: queries from the test split, demonstrations chosen from
the train split (random or RICES), prompts from the config's template.

Per trial (one seed): the same random subset of test queries at every shot count, so scores
across shots compare the same queries; demonstrations drawn with a generator seeded by
(seed, shots), so a trial is reproduced exactly by its seed. With `zero_shot_text_demos: n`,
0 shots means n demonstrations with their images removed (OpenFlamingo's 0-shot).
"""

from __future__ import annotations

import random
from abc import abstractmethod
from typing import ClassVar

from ..errors import EvalError
from ..queries import Example, Query
from ..selection import Selector
from ..templates import Template, join
from .base import Task


class FewShotTask(Task):
    """A dataset task with demonstrations from its train split and a config template."""

    uses_selection = True
    answer_field: ClassVar[str]        # the template field the model must produce

    def __init__(self, settings):
        super().__init__(settings)
        if not settings.template:
            raise EvalError(f"task {self.name}: no template given")
        self.template = Template(settings.template, self.answer_field, settings.query_template)
        self._splits: dict[str, list[Example]] = {}

    @abstractmethod
    def load_split(self, split: str) -> list[Example]:
        """The examples of "train" (demonstration pool) or "test" (queries)."""

    def split(self, name: str) -> list[Example]:
        if name not in self._splits:
            examples = self.load_split(name)
            if not examples:
                raise EvalError(f"task {self.name}: the {name} split is empty")
            ids = [e.id for e in examples]
            if len(set(ids)) != len(ids):
                repeated = next(i for i in ids if ids.count(i) > 1)
                raise EvalError(f"task {self.name}: id {repeated!r} appears more than once in the "
                                f"{name} split")
            self._splits[name] = examples
        return self._splits[name]

    def prepare(self) -> None:
        self.split("test")
        self.split("train")

    def stop_strings(self) -> list[str]:
        stops = ([self.template.stop] if self.template.stop else []) + list(self.settings.stop or [])
        return list(dict.fromkeys(stops))

    def queries(self, shots: int, seed: int, selector: Selector | None) -> list[Query]:
        settings = self.settings
        test = self.split("test")
        if settings.max_queries and settings.max_queries < len(test):
            test = random.Random(f"queries:{seed}").sample(test, settings.max_queries)
        _check_images(self, test)
        count, text_only = shots, False
        if shots == 0 and settings.zero_shot_text_demos:
            count, text_only = settings.zero_shot_text_demos, True
        demos: list[list[Example]] = [[] for _ in test]
        if count:
            if selector is None:
                raise EvalError(f"task {self.name}: demonstrations need a selector")
            rng = random.Random(f"demos:{seed}:{shots}")
            pool = self.split("train")
            if settings.demo_pool_size and settings.demo_pool_size < len(pool):
                pool = rng.sample(pool, settings.demo_pool_size)
            demos = selector.select(test, pool, count, rng)
        return [self.query(example, chosen, text_only) for example, chosen in zip(test, demos, strict=True)]

    def query(self, example: Example, demos: list[Example], text_only: bool = False) -> Query:
        parts = [self.template.render_demo(d.fields, d.image, text_only) for d in demos]
        parts.append(self.template.render_query(example.fields, example.image))
        return Query(id=example.id, prompt=join(parts), references=list(example.references),
                     image=example.image, group=example.group, meta=dict(example.meta))

    def read(self, output: str) -> str:
        for stop in self.stop_strings():
            output = output.split(stop, 1)[0]
        return output.strip()


def _check_images(task: Task, examples: list[Example]) -> None:
    missing = [e.image.path for e in examples if e.image.path is not None and not e.image.path.is_file()]
    if missing:
        raise EvalError(f"task {task.name}: {len(missing)} of {len(examples)} query images are "
                        f"missing, e.g. {str(missing[0])!r} (check data.images / the data root)")
