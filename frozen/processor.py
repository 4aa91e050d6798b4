"""Processor: what turns prompts into model input, in one picklable object shared by training
and inference (as open_clip's `create_model_and_transforms` returns the model's transforms).

    prompt (str / list of str, Target and images) -> items (frozen.prompts.parse_prompt)
      -> ids with `num_prefix_tokens` slots per image, after the LM's special prefix (BOS)
      -> the window policy: training keeps the start, inference keeps the end or refuses
      -> padded PromptBatch, images through the vision tower's ImageTransform

A FrozenModel builds its processor once (`model.processor`) from its tokenizer, its LM's traits
(special prefix, context window) and its tower's transform. `Collator` is the training collate
around it; both hold no model, so data-loader workers receive them under any start method.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import torch

from .images import ImageTransform
from .prompts import (PromptBatch, PromptError, TokenizedPrompt, pad_batch, parse_prompt,
                      prompt_text, tokenize_prompt, truncate)


@dataclasses.dataclass(frozen=True)
class Processor:
    """Tokenizer, prefix slots, special prefix, window and image transform of one model."""

    tokenizer: Any
    num_prefix_tokens: int
    prefix_ids: tuple[int, ...] = ()           # the LM's special prefix (BOS), see LMTraits
    context_length: int | None = None          # the LM's window; None: no fixed window
    image_transform: ImageTransform | None = None   # None: a text-only model

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    def image(self, source: Any) -> torch.Tensor:
        """A PIL image, path or bytes -> uint8 (3, S, S) for the vision tower."""
        if self.image_transform is None:
            raise PromptError("this model has no vision encoder (FrozenConfig.vision is None), "
                              "so prompts cannot contain images")
        return self.image_transform(source)

    def tokenize(self, items: list[Any], eos_after_target: bool = False) -> TokenizedPrompt:
        """Parsed prompt items -> ids with image slots, after the special prefix."""
        return tokenize_prompt(items, self.tokenizer, self.num_prefix_tokens, self.pad_id,
                               list(self.prefix_ids), eos_after_target)

    def batch(self, rows: list[TokenizedPrompt], padding_side: str = "left") -> PromptBatch:
        """Tokenized rows -> a padded batch; images are transformed here."""
        transform = None if self.image_transform is None else self.image
        return pad_batch(rows, self.pad_id, padding_side, transform)

    def collator(self, padding_side: str = "left", eos_after_target: bool = True,
                 max_length: int | None = None) -> "Collator":
        """The training collate (see Collator); max_length defaults to the window."""
        return Collator(self, max_length or self.context_length, padding_side, eos_after_target)

    # ----- inference: the window policy -------------------------------------------------------

    def prompt_rows(self, prompts: Sequence[Any], images, truncation: str,
                    max_new_tokens: int) -> tuple[list[TokenizedPrompt], list[str]]:
        """Tokenize prompts for inference; returns the rows and each prompt as text."""
        rows, texts = [], []
        for prompt in prompts:
            items = parse_prompt(prompt, images)
            rows.append(self.fit_window(self.tokenize(items), truncation, max_new_tokens))
            texts.append(prompt_text(items))
        return rows, texts

    def fit_window(self, row: TokenizedPrompt, truncation: str,
                   max_new_tokens: int) -> TokenizedPrompt:
        """A prompt that fills the window raises (truncation="error") or keeps its end, with
        room for the new tokens where the window allows (truncation="left")."""
        window = self.context_length
        if not window or len(row.ids) < window:
            return row
        if truncation != "left":
            raise PromptError(f"prompt is {len(row.ids)} tokens, longer than the LM's "
                              f"context window of {window} (pass truncation='left', "
                              "or --truncation left, to keep only its end)")
        room = max(window - max_new_tokens, 1)
        return truncate(row, room, "end", self.num_prefix_tokens, len(self.prefix_ids))

    def decode_groups(self, rows: list[TokenizedPrompt],
                      max_new_tokens: int) -> list[tuple[list[int], int]]:
        """Split rows into (indices, new-token budget) groups that respect the context window.

        Each row may continue until its own length reaches the window. Rows with room for the
        full budget decode together; a row with less room decodes on its own, so one long
        prompt never shortens the other rows' continuations.
        """
        window = self.context_length
        if window is None:
            return [(list(range(len(rows))), max_new_tokens)]
        full, groups = [], []
        for i, row in enumerate(rows):
            room = window - len(row.ids)
            if room >= max_new_tokens:
                full.append(i)
            else:
                groups.append(([i], max(room, 1)))
        return ([(full, max_new_tokens)] if full else []) + groups


@dataclasses.dataclass
class Collator:
    """Picklable training collate: prompts (lists of str / Target / images) -> PromptBatch.

    A sequence that ends with a Target gets EOS appended as a target, so the model learns where
    a caption stops; sequences longer than `max_length` lose their end.
    """

    processor: Processor
    max_length: int | None = None
    padding_side: str = "left"
    eos_after_target: bool = True

    def __call__(self, samples: Sequence[Any]) -> PromptBatch:
        rows = []
        for sample in samples:
            row = self.processor.tokenize(parse_prompt(sample), self.eos_after_target)
            if self.max_length:
                row = truncate(row, self.max_length, "start", self.processor.num_prefix_tokens, 0)
            rows.append(row)
        return self.processor.batch(rows, self.padding_side)
