"""Prompt assembly: interleaved text and images -> token ids, image slots, labels, left padding.

A prompt is a `str` or a list of items: `str` (context text), `Target` (text the training loss
is computed on), a PIL image or an image path given through `images=`, or an already
preprocessed image tensor (3, S, S). Each image takes `n` consecutive slots that the model fills
with its prefix embeddings; nothing else marks it. The tokenizer's leading special tokens (BOS)
come once at the start and every text item is tokenized on its own, so a text-only prompt gives
exactly the ids the bare tokenizer gives.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import torch
from PIL import Image

IMAGE_PLACEHOLDER = "<image>"
IGNORE_INDEX = -100


class Target(str):
    """Text whose tokens are training targets (a caption). Behaves as a plain `str` elsewhere."""


class PromptError(ValueError):
    """A prompt that cannot be assembled, with the reason in the message."""


def _is_image(item: Any) -> bool:
    return isinstance(item, Image.Image) or (isinstance(item, torch.Tensor) and item.dim() == 3)


def _type_name(item: Any) -> str:
    """The type of a rejected item, with the shape of arrays and tensors (a tensor of the
    wrong rank looks like an image otherwise)."""
    shape = getattr(item, "shape", None)
    name = f"{type(item).__module__.split('.')[0]}.{type(item).__name__}" if shape is not None \
        else type(item).__name__
    return f"{name} of shape {tuple(shape)}" if shape is not None else name


def parse_prompt(prompt: Any, images: Sequence[Any] | None = None) -> list[Any]:
    """Normalise one prompt to a list of items; `<image>` placeholders in a string take `images`."""
    if isinstance(prompt, str):
        pieces = prompt.split(IMAGE_PLACEHOLDER)
        wanted = len(pieces) - 1
        given = 0 if images is None else len(images)
        if wanted != given:
            raise PromptError(f"prompt has {wanted} {IMAGE_PLACEHOLDER} placeholder(s) but "
                              f"{given} image(s) were given")
        for i, image in enumerate(images or []):
            if not _is_image(image):
                raise PromptError(f"images[{i}] is a {_type_name(image)}; expected a PIL.Image.Image, "
                                  "an image file path or an image tensor (3, S, S)")
        items: list[Any] = []
        for i, piece in enumerate(pieces):
            if piece:
                items.append(Target(piece) if isinstance(prompt, Target) else piece)
            if i < wanted:
                items.append(images[i])
    elif isinstance(prompt, (list, tuple)):
        if images is not None:
            raise PromptError("images= is only for string prompts with <image> placeholders; "
                              "a list prompt carries its images inline")
        items = list(prompt)
        for i, item in enumerate(items):
            if not (isinstance(item, str) or _is_image(item)):
                raise PromptError(f"prompt item {i} is a {_type_name(item)}; expected str, "
                                  "PIL.Image.Image or an image tensor (3, S, S)")
    else:
        raise PromptError(f"a prompt must be a str or a list of str and images, got "
                          f"{type(prompt).__name__}")
    if not items or all(isinstance(it, str) and it == "" for it in items):
        raise PromptError("empty prompt: give some text or at least one image")
    return [it for it in items if not (isinstance(it, str) and it == "")]


@dataclasses.dataclass
class TokenizedPrompt:
    """One prompt as ids with image slots marked (image slots hold `pad_id`)."""

    ids: list[int]
    is_image: list[bool]
    labels: list[int]
    images: list[Any]          # in order of appearance


def tokenize_prompt(items: list[Any], tokenizer, num_prefix_tokens: int, pad_id: int,
                    prefix_ids: list[int], eos_after_target: bool = False) -> TokenizedPrompt:
    ids, is_image, labels, images = list(prefix_ids), [False] * len(prefix_ids), \
        [IGNORE_INDEX] * len(prefix_ids), []
    for item in items:
        if _is_image(item):
            ids += [pad_id] * num_prefix_tokens
            is_image += [True] * num_prefix_tokens
            labels += [IGNORE_INDEX] * num_prefix_tokens
            images.append(item)
        else:
            piece = tokenizer(str(item), add_special_tokens=False)["input_ids"]
            ids += piece
            is_image += [False] * len(piece)
            labels += piece if isinstance(item, Target) else [IGNORE_INDEX] * len(piece)
    if eos_after_target and items and isinstance(items[-1], Target) and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
        is_image.append(False)
        labels.append(tokenizer.eos_token_id)
    return TokenizedPrompt(ids, is_image, labels, images)


def truncate(tp: TokenizedPrompt, max_length: int, keep: str, num_prefix_tokens: int,
             num_special: int) -> TokenizedPrompt:
    """Fit a prompt into `max_length` tokens without splitting an image's slots.

    keep="end" drops the oldest tokens (after the leading special tokens); keep="start" drops the
    newest. Images whose slots are dropped are dropped too.
    """
    if len(tp.ids) <= max_length:
        return tp
    n = num_prefix_tokens
    if keep == "start":
        cut = max_length
        while _inside_image(tp.is_image, cut, n):
            cut -= 1
        kept = sum(tp.is_image[:cut]) // n
        return TokenizedPrompt(tp.ids[:cut], tp.is_image[:cut], tp.labels[:cut], tp.images[:kept])
    start = num_special + (len(tp.ids) - max_length)
    while _inside_image(tp.is_image, start, n):
        start += 1
    dropped = sum(tp.is_image[:start]) // n
    head, tail = slice(0, num_special), slice(start, None)
    return TokenizedPrompt(tp.ids[head] + tp.ids[tail], tp.is_image[head] + tp.is_image[tail],
                           tp.labels[head] + tp.labels[tail], tp.images[dropped:])


def _inside_image(is_image: list[bool], pos: int, n: int) -> bool:
    """True when `pos` is an image slot other than the first slot of its image."""
    if pos >= len(is_image) or not is_image[pos]:
        return False
    run = 0
    while pos - run - 1 >= 0 and is_image[pos - run - 1]:
        run += 1
    return run % n != 0


@dataclasses.dataclass
class PromptBatch:
    """A padded batch ready for the model. T is the padded length, N the number of images."""

    input_ids: torch.Tensor        # (B, T) long; image slots and padding hold pad_id
    attention_mask: torch.Tensor   # (B, T) long, 0 on padding
    position_ids: torch.Tensor     # (B, T) long, counting real tokens only
    image_mask: torch.Tensor       # (B, T) bool, True on image slots
    labels: torch.Tensor           # (B, T) long, IGNORE_INDEX except target tokens
    pixel_values: torch.Tensor | None  # (M, 3, S, S) distinct images in order of appearance
    image_index: torch.Tensor | None = None  # (N,) long: the pixel_values row of each image
    #   slot, row by row; None when every image appears once (N = M)

    def to(self, device: torch.device | str) -> "PromptBatch":
        moved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return PromptBatch(**{k: (v.to(device) if isinstance(v, torch.Tensor) else v)
                              for k, v in moved.items()})

    @property
    def num_images(self) -> int:
        """Images in the prompts, counting repeats (N)."""
        if self.pixel_values is None:
            return 0
        return int(self.pixel_values.shape[0] if self.image_index is None else self.image_index.numel())


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)             # (B, T)


def pad_batch(rows: list[TokenizedPrompt], pad_id: int, padding_side: str,
              image_to_tensor: Callable[[Any], torch.Tensor] | None) -> PromptBatch:
    """Pad tokenized prompts into one batch; images go through `image_to_tensor`."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    width = max(len(r.ids) for r in rows)
    batch = len(rows)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    attention = torch.zeros((batch, width), dtype=torch.long)
    image_mask = torch.zeros((batch, width), dtype=torch.bool)
    labels = torch.full((batch, width), IGNORE_INDEX, dtype=torch.long)
    for b, row in enumerate(rows):
        n = len(row.ids)
        sl = slice(width - n, width) if padding_side == "left" else slice(0, n)
        input_ids[b, sl] = torch.tensor(row.ids, dtype=torch.long)
        attention[b, sl] = 1
        image_mask[b, sl] = torch.tensor(row.is_image, dtype=torch.bool)
        labels[b, sl] = torch.tensor(row.labels, dtype=torch.long)
    images = [img for row in rows for img in row.images]
    pixel_values, image_index = None, None
    if images:
        if image_to_tensor is None and not all(isinstance(img, torch.Tensor) for img in images):
            raise PromptError("this model has no vision encoder (FrozenConfig.vision is None), "
                              "so prompts cannot contain images")
        # The same image object used several times (e.g. a demonstration shared by many
        # few-shot prompts of a batch) is converted and encoded once.
        first: dict[int, int] = {}            # id(image) -> its row of pixel_values
        unique: list[Any] = []
        for img in images:
            if id(img) not in first:
                first[id(img)] = len(unique)
                unique.append(img)
        pixel_values = torch.stack([img if isinstance(img, torch.Tensor) else image_to_tensor(img)
                                    for img in unique])                     # (M, 3, S, S)
        if len(unique) < len(images):
            image_index = torch.tensor([first[id(img)] for img in images])  # (N,)
    return PromptBatch(input_ids, attention, position_ids_from_mask(attention), image_mask,
                       labels, pixel_values, image_index)


def prompt_text(items: list[Any]) -> str:
    """The prompt as text, with `<image>` where each image stands."""
    return "".join(str(it) if isinstance(it, str) else IMAGE_PLACEHOLDER for it in items)

