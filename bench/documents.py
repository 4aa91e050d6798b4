"""Document decode throughput against the pair pipeline, on the same images in the same run.

Both read 384 web-photo-sized JPEGs (640x480 -> 224) through a DataLoader with one worker.
Baseline: the image-caption pipeline (img2dataset shards, batches of 32 pairs). Candidate:
the document pipeline on 96 MMC4-layout documents of 4 images each, images inline as base64
as in OpenFlamingo's shards (JSON parse, base64 decode, layout, window cut, tokenization,
image decode, collate; batches of 8 documents). Reported as images per second, with
documents per second beside it; clocks start at the first batch (worker start left out).
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import time
from pathlib import Path

import numpy as np

from frozen.images import ImageTransform

from .common import Row
from .data_pipeline import IMAGES, SIZE, photo_like, pipeline, write_shards

IMAGES_PER_DOCUMENT, DOCUMENTS_PER_BATCH = 4, 8
SENTENCE = "a sentence of web text that talks about the picture next to it in a few words."


def write_documents(folder: Path, shards: int = 4) -> list[str]:
    """MMC4-layout tars: KEY.json with text_list and image_info (image_base64)."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    per_shard = IMAGES // IMAGES_PER_DOCUMENT // shards
    urls = []
    for s in range(shards):
        path = folder / f"{s:05d}.tar"
        with tarfile.open(path, "w") as tar:
            for i in range(per_shard):
                texts = [SENTENCE] * (2 * IMAGES_PER_DOCUMENT)
                info = [{"matched_text_index": 2 * k + 1,
                         "image_base64": base64.b64encode(photo_like(rng)).decode()}
                        for k in range(IMAGES_PER_DOCUMENT)]
                data = json.dumps({"text_list": texts, "image_info": info}).encode()
                member = tarfile.TarInfo(f"{s:05d}{i:04d}.json")
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
        urls.append(str(path))
    return urls


def document_pipeline(urls: list[str], collator) -> tuple[float, float]:
    """(images per second, documents per second) after the first batch."""
    import torch

    from frozen.data.documents import DocumentRules, TokenBudget
    from frozen.data.mixing import DocumentStream

    batches = IMAGES // IMAGES_PER_DOCUMENT // DOCUMENTS_PER_BATCH
    stream = DocumentStream(urls, ImageTransform(SIZE), collator, DOCUMENTS_PER_BATCH, batches,
                            DocumentRules(), TokenBudget.of_collator(collator),
                            resampled=False, shuffle_buffer=0)
    loader = iter(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=1))
    next(loader)
    start = time.perf_counter()
    images = documents = 0
    for batch in loader:
        images += batch.prompts.num_images
        documents += len(batch.keys)
    seconds = time.perf_counter() - start
    return images / seconds, documents / seconds


def run(tmp: Path, repeats: int, text_model) -> list[Row]:
    """text_model: any FrozenModel; its tokenizer collates (and cuts) the text."""
    pair_urls = write_shards(tmp / "bench-pair-shards")
    document_urls = write_documents(tmp / "bench-document-shards")
    collator = text_model.collator()
    pairs, images, documents = [], [], []
    for _ in range(max(1, repeats // 2)):
        pairs.append(pipeline(pair_urls, collator))
        image_rate, document_rate = document_pipeline(document_urls, collator)
        images.append(image_rate)
        documents.append(document_rate)
    pair, image, document = (float(np.median(v)) for v in (pairs, images, documents))
    return [Row(f"documents, {IMAGES_PER_DOCUMENT} JPEGs each -> 224, 1 worker (images/s)", image,
                pair, "", "report (vs the pair pipeline)", image / pair, None,
                f"{image / pair:.2f}x the pair pipeline; {document:.1f} docs/s")]


def main() -> None:
    """python -m bench.documents: this row alone (its baseline measured in the same run)."""
    import argparse
    import logging
    import tempfile

    import torch

    from frozen import FrozenConfig, FrozenModel

    from .common import bench_lm_dir, print_table

    parser = argparse.ArgumentParser(prog="python -m bench.documents", description=main.__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        model = FrozenModel(FrozenConfig(lm=bench_lm_dir(Path(tmp)), vision=None))
        print_table(run(Path(tmp), args.repeats, model))


if __name__ == "__main__":
    main()
