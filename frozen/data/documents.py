"""Interleaved image-text documents (OpenFlamingo's MMC4 layout) -> training sequences.

A document is one webdataset sample whose `KEY.json` member holds

    {"text_list": ["sentence 0", "sentence 1", ...],
     "image_info": [{"matched_text_index": 1, "image_base64": "..."},        # bytes inline
                    {"matched_text_index": 3, "image_name": "img0.jpg"}]}   # member KEY.img0.jpg

(other fields, such as MMC4's `raw_url` or `matched_sim`, are ignored). An image goes right
before the sentence it is matched to; images matched to one sentence keep their order. The
sentences between two images are joined with one space, so the document reads
`sentence 0<image>sentence 1 sentence 2<image>sentence 3`, as OpenFlamingo lays it out.

The rules (DocumentRules), applied in this order:
  - a document with more than `max_images` images is skipped (too_many_images);
  - the document is cut to `max_tokens` (the LM's context window by default) between pieces,
    never inside an image: an image is kept only when its slots and at least one text token
    after it fit; images after the cut are neither decoded nor counted;
  - images that are missing or cannot be decoded: `bad_image="drop_image"` (default) drops the
    image and its slot, keeps the text, and counts the image under its kind (missing_image,
    corrupt_image, truncated_image, decompression_bomb); `"drop_document"` skips the whole
    document, counted once under the kind of its first bad image;
  - a document left with fewer than `min_images` images is skipped (too_few_images).
A skipped document counts once, under one kind; a kept one counts as good, and each image
dropped from it counts under the image's kind.
The loss is on text tokens only, never on image slots or padding; `loss_on="text_after_image"`
leaves out the text before the first image too (OpenFlamingo's masking).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

import torch

from frozen.images import MAX_PIXELS
from frozen.prompts import Target

from .decode import decode_image
from .skips import SampleSkipped

DOCUMENT_KEY = "json"
BAD_IMAGE_POLICIES = ("drop_image", "drop_document")
LOSS_ON = ("text", "text_after_image")


@dataclasses.dataclass
class DocumentRules:
    """How one document becomes a training sequence (see the module docstring).

    min_images / max_images: documents outside this range of images are skipped.
    bad_image: "drop_image" (drop it and its slot) or "drop_document" (skip the document).
    loss_on: "text" (every text token) or "text_after_image" (only text after the first image).
    max_tokens: the sequence length a document is cut to; None: the LM's context window.
    """

    min_images: int = 1
    max_images: int = 8
    bad_image: str = "drop_image"
    loss_on: str = "text"
    max_tokens: int | None = None

    def __post_init__(self):
        if not 0 <= self.min_images <= self.max_images:
            raise ValueError(f"documents need 0 <= min_images <= max_images, got min_images="
                             f"{self.min_images}, max_images={self.max_images}")
        if self.bad_image not in BAD_IMAGE_POLICIES:
            raise ValueError(f"bad_image={self.bad_image!r}: expected one of {BAD_IMAGE_POLICIES}")
        if self.loss_on not in LOSS_ON:
            raise ValueError(f"loss_on={self.loss_on!r}: expected one of {LOSS_ON}")
        if self.max_tokens is not None and self.max_tokens < 4:
            raise ValueError(f"max_tokens={self.max_tokens} is too small for a document")


@dataclasses.dataclass
class ImageRef:
    """One image of a document before decoding: its bytes, or why there are none."""

    text_index: int               # the sentence it goes before
    data: bytes | None
    problem: tuple[str, str] | None = None     # (skip kind, detail) when data is None


@dataclasses.dataclass
class Document:
    """A document ready to collate: items are str / Target text and (3, S, S) images."""

    key: str
    items: list[Any]
    num_images: int
    dropped: list[tuple[str, str]]      # (skip kind, detail) of each image dropped as bad


# ----- reading the MMC4 JSON ------------------------------------------------------------------

def read_document(sample: dict[str, Any]) -> tuple[list[str], list[ImageRef]]:
    """A raw sample -> (sentences, image refs), or SampleSkipped("bad_document")."""
    raw = sample.get(DOCUMENT_KEY)
    if raw is None:
        raise SampleSkipped("bad_document", f"no .{DOCUMENT_KEY} member")
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise SampleSkipped("bad_document", f"invalid JSON ({err})") from None
    texts = doc.get("text_list") if isinstance(doc, dict) else None
    infos = doc.get("image_info") if isinstance(doc, dict) else None
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise SampleSkipped("bad_document", "text_list is missing or not a list of strings")
    if not isinstance(infos, list) or not all(isinstance(i, dict) for i in infos):
        raise SampleSkipped("bad_document", "image_info is missing or not a list of objects")
    refs = []
    for n, info in enumerate(infos):
        index = info.get("matched_text_index")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(texts):
            raise SampleSkipped("bad_document", f"image_info[{n}].matched_text_index={index!r} is "
                                f"not a sentence index (text_list has {len(texts)})")
        refs.append(image_ref(sample, info, index))
    return texts, refs


def image_ref(sample: dict[str, Any], info: dict, index: int) -> ImageRef:
    """The image's bytes: `image_base64` inline, else the member named by `image_name`."""
    if info.get("image_base64") is not None:
        try:
            return ImageRef(index, base64.b64decode(info["image_base64"], validate=True))
        except (binascii.Error, TypeError, ValueError):
            return ImageRef(index, None, ("corrupt_image", "image_base64 is not valid base64"))
    name = info.get("image_name")
    if not isinstance(name, str) or not name:
        return ImageRef(index, None, ("missing_image", "neither image_base64 nor image_name"))
    data = sample.get(name.lower())       # member KEY.<image_name>; extensions are lower-cased
    if data is None:
        return ImageRef(index, None, ("missing_image", f"no member {name!r}"))
    return ImageRef(index, data)


def interleave(texts: list[str], refs: list[ImageRef]) -> list[str | ImageRef]:
    """Images before their sentences, consecutive sentences joined by one space."""
    before: dict[int, list[ImageRef]] = {}
    for ref in refs:
        before.setdefault(ref.text_index, []).append(ref)
    pieces: list[str | ImageRef] = []
    for i, text in enumerate(texts):
        pieces += before.get(i, [])
        text = text.strip()
        if not text:
            continue
        if pieces and isinstance(pieces[-1], str):
            pieces[-1] += " " + text
        else:
            pieces.append(text)
    return pieces


# ----- cutting to the window ------------------------------------------------------------------

@dataclasses.dataclass
class TokenBudget:
    """Counts tokens as the training collate does: leading special tokens, each text piece
    tokenized on its own, `num_prefix_tokens` slots per image, EOS at the end."""

    tokenizer: Any
    num_prefix_tokens: int
    max_tokens: int
    num_special: int = 1

    @classmethod
    def of_collator(cls, collator: Any, max_tokens: int | None = None) -> "TokenBudget":
        """From a frozen.processor.Collator (the model's training collate)."""
        window = max_tokens or collator.max_length
        if not window:
            raise ValueError("documents need max_tokens: the LM reports no context window")
        processor = collator.processor
        return cls(processor.tokenizer, processor.num_prefix_tokens, window,
                   len(processor.prefix_ids))

    def cut(self, pieces: list[str | ImageRef]) -> list[str | ImageRef]:
        """The pieces that fit; text may run past the end (the collate cuts its tail), an
        image never does, and every kept image has at least one text token after it."""
        room = self.max_tokens - self.num_special - 1         # the EOS after the last text
        used, kept = 0, []
        for piece in pieces:
            if used >= room:
                break
            if isinstance(piece, str):
                used += len(self.tokenizer(piece, add_special_tokens=False)["input_ids"])
            elif used + self.num_prefix_tokens + 1 > room:
                break
            else:
                used += self.num_prefix_tokens
            kept.append(piece)
        while kept and not isinstance(kept[-1], str):
            kept.pop()                        # trailing images: nothing after them to learn
        return kept


# ----- one document ---------------------------------------------------------------------------

def decode_document(sample: dict[str, Any], transform: Callable[[Any], torch.Tensor],
                    rules: DocumentRules, budget: TokenBudget,
                    max_pixels: int = MAX_PIXELS) -> Document:
    """A raw sample -> Document, or SampleSkipped naming why the whole document is skipped."""
    texts, refs = read_document(sample)
    if len(refs) > rules.max_images:
        raise SampleSkipped("too_many_images", f"{len(refs)} images, max_images={rules.max_images}")
    pieces, dropped = [], []
    for piece in budget.cut(interleave(texts, refs)):
        if isinstance(piece, str):
            pieces.append(piece)
            continue
        try:
            if piece.problem is not None:
                raise SampleSkipped(*piece.problem)
            pieces.append(decode_image(piece.data, transform, max_pixels))   # (3, S, S)
        except SampleSkipped as bad:
            if rules.bad_image == "drop_document":
                raise
            dropped.append((bad.kind, bad.detail))
    items = to_items(pieces, rules.loss_on)
    images = sum(isinstance(it, torch.Tensor) for it in items)
    if images < rules.min_images:
        raise SampleSkipped("too_few_images", f"{images} usable images, min_images={rules.min_images}")
    return Document(sample.get("__key__", "?"), items, images, dropped)


def to_items(pieces: list[str | torch.Tensor], loss_on: str) -> list[Any]:
    """Prompt items: images, and text as Target (the loss) or plain context."""
    items: list[Any] = []
    seen_image = False
    for piece in pieces:
        if isinstance(piece, torch.Tensor):
            items.append(piece)
            seen_image = True
        elif items and isinstance(items[-1], str):               # a dropped image between texts
            items[-1] = type(items[-1])(items[-1] + " " + piece)
        else:
            items.append(Target(piece) if seen_image or loss_on == "text" else piece)
    while items and isinstance(items[-1], torch.Tensor):
        items.pop()
    return items


class DocumentPacker:
    """One document per training sequence (the Packer interface of CaptionStream)."""

    def __call__(self, documents) -> Iterator[list[Document]]:
        for document in documents:
            yield [document]

    def prompt(self, group: list[Document]) -> list[Any]:
        return group[0].items
