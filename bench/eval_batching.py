"""Few-shot captioning at 8 shots: queries batched (left padded) against one query at a time.

Both sides caption the same 256 queries with the same 8-shot prompts and greedy decoding; the
ratio is the speed-up of batching. Two prompt sets: every demonstration a fresh image, and
demonstrations drawn from a support pool of 64 images (as in RICES or a fixed support set),
where a batch encodes each shared demonstration once. Padding changes the order of floating-point sums, so a
random model's near-tied tokens can flip: the share of identical captions is reported.

The note gives the images' share of the batched time (preprocessing and encoding each batch's
distinct images, timed alone): work that one query at a time does nearly as well, so the
speed-up stays below single time / image time however cheap the batched LM becomes. Demonstrations
here differ from query to query, so no prompt prefix is shared within a batch and prefilling
a shared prefix once (KV prefix reuse) has nothing to reuse.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .common import Row, alternated

SHOTS, QUERIES, NEW_TOKENS = 8, 256, 12


def random_image(rng: np.random.Generator, size: int = 64) -> Image.Image:
    color = rng.integers(0, 255, 3)
    arr = np.full((size, size, 3), rng.integers(215, 255), dtype=np.uint8)
    x, y = rng.integers(8, size - 24, 2)
    arr[y:y + 16, x:x + 16] = color
    return Image.fromarray(arr)


CAPTIONS = ["a big red circle on the left", "a small blue square on the right",
            "a big green triangle on the left", "a small yellow diamond on the right"]


def few_shot_prompts(seed: int = 0, pool: int | None = None) -> list[list]:
    """QUERIES prompts of SHOTS (image, caption) demonstrations and a query image; with
    `pool`, demonstrations are drawn from that many (image, caption) pairs."""
    rng = np.random.default_rng(seed)

    def demo() -> tuple[Image.Image, str]:
        return random_image(rng), CAPTIONS[int(rng.integers(len(CAPTIONS)))] + "\n"

    support = [demo() for _ in range(pool or 0)]
    prompts = []
    for _ in range(QUERIES):
        items: list = []
        for _ in range(SHOTS):
            items += support[int(rng.integers(pool))] if pool else demo()
        prompts.append(items + [random_image(rng)])
    return prompts


def run(model, repeats: int, batch_size: int = 64) -> list[Row]:
    return [run_prompts(model, repeats, batch_size, few_shot_prompts(), "fresh demos"),
            run_prompts(model, repeats, batch_size, few_shot_prompts(pool=64), "64-image pool")]


def run_prompts(model, repeats: int, batch_size: int, prompts: list[list], label: str) -> Row:
    kwargs = dict(max_new_tokens=NEW_TOKENS, stop=["\n"])
    with torch.no_grad():
        batched = model.generate(prompts, batch_size=batch_size, **kwargs)
        single = [model.generate([p], **kwargs)[0] for p in prompts]
    agree = sum(b == s for b, s in zip(batched, single)) / len(prompts)
    runs = {"batched": lambda: model.generate(prompts, batch_size=batch_size, **kwargs),
            "single": lambda: [model.generate([p], **kwargs) for p in prompts],
            "images": lambda: encode_batches(model, prompts, batch_size)}
    wall, cpu = alternated(runs, repeats, {"single": max(1, repeats // 2)})
    speedup = wall["single"] / wall["batched"]
    return Row(f"8-shot captioning, {QUERIES} queries, {label} (queries/s)", QUERIES / wall["batched"],
               QUERIES / wall["single"], "", ">= 8x faster", speedup, speedup >= 8,
               f"speed-up {speedup:.1f}x (CPU time {cpu['single'] / cpu['batched']:.1f}x); images "
               f"{wall['images'] / wall['batched']:.0%} of batched time; {agree:.0%} captions identical")


def encode_batches(model, prompts: list[list], batch_size: int) -> None:
    """The vision tower's part of the batched run: each batch's distinct images, encoded."""
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            batch = model.collate(prompts[start:start + batch_size]).to(model.device)
            model.encode_images(batch.pixel_values)
