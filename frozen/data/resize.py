"""Pre-resize image-caption shards once, so every training epoch decodes small images.

    python -m frozen.data.resize "data/cc3m/{00000..00331}.tar" data/cc3m-224 --size 224

Each image is scaled so its longer side is `size` (the first step of the model's own
pad-and-resize, so training sees the same pixels up to JPEG re-encoding) and re-encoded as
JPEG; captions and every other file of a sample are copied as they are. Shards keep their
names; each is written to a temporary file and renamed when complete, so an interrupted run
leaves no half-written shard and can simply be started again (finished shards are skipped).
Samples whose image cannot be read are left out and counted.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from tqdm import tqdm

from ..atomic import replacing
from ..images import ImageError, load_image, scale_longer_side
from .decode import IMAGE_KEYS
from .shards import expand_shards
from .skips import DataError

SAMPLE_FIELDS = ("__key__", "__url__", "__local_path__")


def resize_image(data: bytes, size: int, quality: int = 95) -> bytes:
    """Encoded image -> JPEG bytes with the longer side `size` (never enlarged)."""
    img = load_image(data, draft_size=size)
    if max(img.size) > size:
        img = scale_longer_side(img, size)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def resize_shard(url: str, out: Path, size: int, quality: int, bar: tqdm) -> dict[str, int]:
    """Write the resized copy of one shard to `out`; returns counts of written and skipped."""
    import webdataset as wds

    counts = {"written": 0, "unreadable_image": 0, "no_image": 0}
    with replacing(out) as tmp, wds.TarWriter(str(tmp)) as sink:
        for sample in wds.WebDataset(url, shardshuffle=False, empty_check=False):
            image_ext = next((ext for ext in IMAGE_KEYS if ext in sample), None)
            if image_ext is None:
                counts["no_image"] += 1
                continue
            try:
                resized = resize_image(sample[image_ext], size, quality)
            except ImageError:
                counts["unreadable_image"] += 1
                continue
            record = {k: v for k, v in sample.items()
                      if k not in SAMPLE_FIELDS and k != image_ext}
            record.update({"__key__": sample["__key__"], "jpg": resized})
            sink.write(record)
            counts["written"] += 1
            bar.update(1)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m frozen.data.resize",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("shards", help="shard spec: paths or a brace pattern")
    parser.add_argument("out", type=Path, help="folder for the resized shards")
    parser.add_argument("--size", type=int, default=224, help="longer side in pixels")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality")
    args = parser.parse_args(argv)
    if args.size < 8:
        parser.error(f"--size must be at least 8 pixels, got {args.size}")
    try:
        urls = expand_shards(args.shards)
    except DataError as err:
        parser.error(str(err))
    missing = [u for u in urls if not Path(u).is_file()]
    if missing:
        parser.error(f"{len(missing)} of {len(urls)} shards do not exist (first: {missing[0]})")
    args.out.mkdir(parents=True, exist_ok=True)
    totals: dict[str, int] = {}
    with tqdm(unit="img", desc="resizing") as bar:
        for url in urls:
            target = args.out / Path(url).name
            if target.exists():
                continue
            for key, count in resize_shard(url, target, args.size, args.quality, bar).items():
                totals[key] = totals.get(key, 0) + count
    print(f"wrote {len(urls)} shards to {args.out}: " +
          ", ".join(f"{count} {key.replace('_', ' ')}" for key, count in totals.items()))


if __name__ == "__main__":
    main()
