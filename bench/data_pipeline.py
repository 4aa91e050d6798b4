"""The data pipeline from shards (one worker process) against plain PIL on the same files.

Baseline: for every image in the shards, PIL decodes it at full size and resizes it to the
tower's input size. Candidate: `CaptionStream` through a DataLoader with one worker, which
also reads the tars, decodes at reduced size (JPEG draft), pads, resizes, normalises, and
tokenizes and collates the captions. Both are measured as images per second; the pipeline's
clock starts at its first batch, so the worker process's one-off start (importing torch, about
a second) is left out, as it is amortised over a real training run by persistent workers.
"""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from frozen.images import ImageTransform

from .common import Row

IMAGES, SIZE = 384, 224


def photo_like(rng: np.random.Generator, width: int = 640, height: int = 480) -> bytes:
    """A smooth random JPEG about the size of a web photo."""
    small = rng.integers(0, 255, (height // 16, width // 16, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((width, height), Image.BICUBIC)
    buffer = io.BytesIO()
    img.filter(ImageFilter.GaussianBlur(2)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_shards(folder: Path, shards: int = 4) -> list[str]:
    """img2dataset-layout tars: KEY.jpg + KEY.txt."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    urls = []
    per_shard = IMAGES // shards
    for s in range(shards):
        path = folder / f"{s:05d}.tar"
        with tarfile.open(path, "w") as tar:
            for i in range(per_shard):
                key = f"{s:05d}{i:04d}"
                for ext, data in (("jpg", photo_like(rng)), ("txt", b"a photo of something")):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        urls.append(str(path))
    return urls


def plain_pil(urls: list[str]) -> float:
    """Images per second."""
    start, count = time.perf_counter(), 0
    for url in urls:
        with tarfile.open(url) as tar:
            for member in tar:
                if member.name.endswith(".jpg"):
                    img = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
                    np.asarray(img.resize((SIZE, SIZE), Image.BICUBIC))
                    count += 1
    return count / (time.perf_counter() - start)


def pipeline(urls: list[str], collator) -> float:
    """Images per second after the first batch."""
    import torch

    from frozen.data import CaptionStream

    batch_size = 32
    stream = CaptionStream(urls, ImageTransform(SIZE), collator, batch_size,
                           batches=IMAGES // batch_size, resampled=False, shuffle_buffer=0)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=1)
    batches = iter(loader)
    next(batches)
    start = time.perf_counter()
    count = sum(batch.prompts.num_images for batch in batches)
    return count / (time.perf_counter() - start)


def run(tmp: Path, repeats: int, text_model) -> list[Row]:
    """text_model: any FrozenModel; only its tokenizer is used, to collate the captions."""
    urls = write_shards(tmp / "bench-shards")
    collator = text_model.collator()
    rates = {"pil": [], "ours": []}
    for _ in range(max(1, repeats // 2)):
        rates["pil"].append(plain_pil(urls))
        rates["ours"].append(pipeline(urls, collator))
    resized = resized_copy(urls, tmp / "bench-shards-224")
    for _ in range(max(1, repeats // 2)):
        rates.setdefault("resized", []).append(pipeline(resized, collator))
    pil, ours, pre = (float(np.median(rates[k])) for k in ("pil", "ours", "resized"))
    return [Row("data pipeline, 640x480 JPEG -> 224, 1 worker (images/s)", ours, pil, "",
                ">= 1.5x the baseline", ours / pil, ours / pil >= 1.5,
                f"{ours / pil:.2f}x faster"),
            Row("data pipeline, pre-resized shards, 1 worker (images/s)", pre, pil, "",
                "report (vs plain PIL on the originals)", pre / pil, None,
                f"{pre / pil:.2f}x faster")]


def resized_copy(urls: list[str], folder: Path) -> list[str]:
    """The shards as `python -m frozen.data.resize --size 224` writes them."""
    from tqdm import tqdm

    from frozen.data.resize import resize_shard

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    with tqdm(disable=True) as bar:
        for url in urls:
            target = folder / Path(url).name
            resize_shard(url, target, SIZE, 95, bar)
            out.append(str(target))
    return out
