"""Prompt templates from config, and assembling prompts from them.

A template is one demonstration, e.g. ``<image>Output:{caption}<|endofchunk|>``: one
``<image>`` marker and ``{field}`` placeholders filled from an example's fields. The query is
the same text cut just before the answer field (``<image>Output:``) unless a separate query
template is given; the text after the answer field (``<|endofchunk|>``) is where generation
stops. A prompt is the demonstrations back to back, then the query, as a list of items: text
(adjacent text merged, so it is tokenized in one piece) and `ImageRef` images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from .errors import EvalError
from .queries import ImageRef, Item

IMAGE = "<image>"
FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Template:
    """A demonstration template with its answer field, and an optional query template."""

    demo: str
    answer_field: str
    query: str | None = None

    def __post_init__(self) -> None:
        marker = "{" + self.answer_field + "}"
        if self.demo.count(marker) != 1:
            raise EvalError(f"template {self.demo!r} must contain the answer field {marker} exactly once")
        if self.demo.count(IMAGE) != 1:
            raise EvalError(f"template {self.demo!r} must contain {IMAGE} exactly once")
        if self.query is not None:
            if self.query.count(IMAGE) != 1:
                raise EvalError(f"query template {self.query!r} must contain {IMAGE} exactly once")
            if marker in self.query:
                raise EvalError(f"query template {self.query!r} must not contain the answer field {marker}")

    @property
    def query_text(self) -> str:
        """The query template: given, or the demonstration cut before the answer field."""
        if self.query is not None:
            return self.query
        return self.demo[: self.demo.index("{" + self.answer_field + "}")]

    @property
    def stop(self) -> str | None:
        """The text after the answer field up to the next image or field (e.g. "<|endofchunk|>")."""
        tail = self.demo[self.demo.index("{" + self.answer_field + "}") + len(self.answer_field) + 2:]
        tail = re.split(r"<image>|\{\w+\}", tail, maxsplit=1)[0].strip(" ")
        return tail or None

    def render_demo(self, fields: Mapping[str, str], image: ImageRef, text_only: bool = False) -> list[Item]:
        """One demonstration; `text_only` drops its image (OpenFlamingo's text-only 0-shot demos)."""
        text = fill(self.demo, fields)
        if text_only:
            return [text.replace(IMAGE, "")]
        return _with_image(text, image)

    def render_query(self, fields: Mapping[str, str], image: ImageRef) -> list[Item]:
        """The query part of a prompt (the answer field is never filled)."""
        return _with_image(fill(self.query_text, fields), image)


def fill(text: str, fields: Mapping[str, str]) -> str:
    """Replace each {name} with fields[name]; values are inserted verbatim."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in fields:
            raise EvalError(f"template {text!r} uses {{{name}}}, but the task provides only "
                            f"{', '.join('{' + k + '}' for k in sorted(fields))}")
        return str(fields[name])

    return FIELD.sub(value, text)


def _with_image(text: str, image: ImageRef) -> list[Item]:
    before, after = text.split(IMAGE)
    return [before, image, after]


def join(parts: Iterable[Iterable[Item]]) -> list[Item]:
    """Concatenate prompt parts, merging adjacent text and dropping empty text."""
    items: list[Item] = []
    for part in parts:
        for item in part:
            if isinstance(item, str):
                if not item:
                    continue
                if items and isinstance(items[-1], str):
                    items[-1] += item
                    continue
            items.append(item)
    return items


def prompt_text(items: Iterable[Item]) -> tuple[str, list[str]]:
    """A prompt as text with an <image> marker per image, and the images' keys in order."""
    text, keys = [], []
    for item in items:
        if isinstance(item, ImageRef):
            text.append(IMAGE)
            keys.append(item.key)
        else:
            text.append(item)
    return "".join(text), keys
