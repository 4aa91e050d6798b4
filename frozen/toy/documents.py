"""Interleaved documents of the shapes world, in the MMC4 layout of frozen.data.documents.

    python -m frozen.toy.documents --out data/shapes-docs --docs 4000

A document shows 2 to 4 fresh renders, each right before its plain caption, with short
connecting sentences between them:

    some shapes.<image>a big red circle on the left. and then<image>a small blue square on the right.

Only plain captions (the vision side trains on nothing else) and train-split attributes: the
held-out color-shape pairs never appear in any image written here.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from frozen.data.document_writer import DocumentWriter
from frozen.toy.captions import caption
from frozen.toy.render import render, sample_attributes, sample_scene

OPENINGS = ("some shapes.", "here are a few shapes.", "look at these.")
LINKS = ("and then", "next,", "another one:", "and here")


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def document(rng: np.random.Generator, min_images: int, max_images: int) -> tuple[list[str], list[tuple]]:
    """(text_list, [(matched_text_index, png bytes)]) of one random document."""
    texts = [str(rng.choice(OPENINGS))]
    images = []
    for i in range(int(rng.integers(min_images, max_images + 1))):
        if i:
            texts.append(str(rng.choice(LINKS)))
        attributes = sample_attributes(rng, "train")
        images.append((len(texts), png(render(sample_scene(rng, attributes)))))
        texts.append(caption(attributes, "plain") + ".")
    return texts, images


def write_documents(out: Path, documents: int, seed: int = 0, per_shard: int = 1000,
                    min_images: int = 2, max_images: int = 4) -> str:
    """Write `documents` documents as shards under `out`; returns their brace pattern."""
    rng = np.random.default_rng(seed)
    with DocumentWriter(out, per_shard) as writer:
        for _ in range(documents):
            writer.add(*document(rng, min_images, max_images))
        return writer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m frozen.toy.documents",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/shapes-docs"))
    parser.add_argument("--docs", type=int, default=4000, help="documents to write")
    parser.add_argument("--per-shard", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_documents(args.out, args.docs, args.seed, args.per_shard))


if __name__ == "__main__":
    main()
