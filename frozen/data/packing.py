"""Packing image-caption pairs into training prompts.

One pair becomes `[image, Target(caption)]`. Packing puts several consecutive pairs into one
sequence, `<image>caption\n<image>caption\n...<image>caption`, every caption a Target: the
model then also learns to use earlier pairs in its context (the few-shot prompt format), and
short captions waste less padding. The collate appends EOS after the last caption.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from frozen.prompts import Target

from .decode import Pair


class Packer:
    """Group consecutive pairs into prompts of at most `pairs` pairs and `max_tokens` tokens.

    max_tokens counts n prefix slots per image plus the caption's tokens (needs `tokenizer`);
    None packs by pair count only. A pair longer than the budget on its own still forms a
    prompt, which the collate truncates to the context window.
    """

    def __init__(self, pairs: int = 1, max_tokens: int | None = None, separator: str = "\n",
                 tokenizer: Any = None, num_prefix_tokens: int = 2):
        if pairs < 1:
            raise ValueError(f"pairs per sequence must be >= 1, got {pairs}")
        if max_tokens is not None and tokenizer is None:
            raise ValueError("packing to max_tokens needs the tokenizer")
        self.pairs = pairs
        self.max_tokens = max_tokens
        self.separator = separator
        self.tokenizer = tokenizer
        self.num_prefix_tokens = num_prefix_tokens

    def cost(self, pair: Pair) -> int:
        if self.max_tokens is None:
            return 0
        ids = self.tokenizer(pair.caption + self.separator, add_special_tokens=False)["input_ids"]
        return self.num_prefix_tokens + len(ids)

    def prompt(self, group: list[Pair]) -> list[Any]:
        items: list[Any] = []
        for i, pair in enumerate(group):
            last = i == len(group) - 1
            items += [pair.image, Target(pair.caption if last else pair.caption + self.separator)]
        return items

    def __call__(self, pairs: Iterable[Pair]) -> Iterator[list[Pair]]:
        """Consecutive pairs grouped into sequences; `prompt(group)` makes the prompt."""
        group: list[Pair] = []
        used = 2   # room for BOS and EOS
        for pair in pairs:
            cost = self.cost(pair)
            if group and self.max_tokens is not None and used + cost > self.max_tokens:
                yield group
                group, used = [], 2
            group.append(pair)
            used += cost
            if len(group) >= self.pairs:
                yield group
                group, used = [], 2
        if group:
            yield group
