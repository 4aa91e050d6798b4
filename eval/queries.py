"""What flows through an evaluation: images by reference, annotated examples, queries with
complete prompts, and finished records (one line of the resumable log each)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from PIL import Image

from .errors import EvalError


@dataclass(frozen=True)
class ImageRef:
    """An image by a stable key (its path, or a render id), loaded only when needed."""

    key: str
    path: Path | None = None
    pil: Image.Image | None = field(default=None, compare=False, repr=False)

    def load(self) -> Image.Image:
        """The RGB picture; a missing or unreadable file raises EvalError naming it."""
        if self.pil is not None:
            return self.pil
        from frozen import ImageError, load_image

        try:
            return load_image(self.path)
        except ImageError as err:
            raise EvalError(f"{err} (image {self.key!r})") from None


Item = Union[str, ImageRef]


@dataclass(frozen=True)
class Example:
    """One annotated image of a data split: template fields, references, sub-score group."""

    id: str
    image: ImageRef
    fields: dict[str, str]             # template fields, e.g. {"caption": ...} or {"question", "answer"}
    references: tuple[str, ...] = ()   # what a prediction on this example is scored against
    group: str = ""                    # sub-score bucket (VQA answer type, shapes style, ...)
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. image_id / question_id for exports


@dataclass
class Query:
    """One prompt to generate from, and what its answer is scored against."""

    id: str
    prompt: list[Item]
    references: list[str]
    image: ImageRef                   # the query image (report thumbnail)
    group: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Record:
    """One finished query, as logged (one JSONL line) and as written to results.json."""

    shots: int
    trial: int
    seed: int
    id: str
    prompt: str            # the prompt text with an <image> marker at each image
    images: list[str]      # keys of the prompt's images, in order
    output: str            # the generated continuation (already cut at the stop strings)
    prediction: str        # the answer read from it
    references: list[str]
    group: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Record":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})
