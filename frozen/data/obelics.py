"""OBELICS-style parquet -> MMC4-layout document shards.

    python -m frozen.data.obelics "data/obelics/*.parquet" --out data/obelics-shards
    python -m frozen.data.obelics part-0.parquet --out shards --image-root data/images

A row is one web document: `texts` and `images`, two lists of the same length where exactly
one of the two is non-null at each position. An image is given as bytes, as a path (absolute,
or relative to --image-root), or as {"bytes": ..., "path": ...} (the Hugging Face datasets
Image layout). Each image goes before the text that follows it in the row; images with no text
after them are left out (nothing would be learned from them). Images whose bytes are not here
(URLs, missing files) keep their place without bytes, so training counts them as missing.
Rows that break the layout are skipped and counted. Needs pyarrow (`pip install frozen[documents]`).
"""

from __future__ import annotations

import argparse
import glob
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .document_writer import DocumentWriter


class RowError(ValueError):
    """A row that is not an OBELICS document; `kind` names the problem."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def image_bytes(image: Any, image_root: Path | None, counts: Counter) -> tuple[bytes | None, str | None]:
    """(bytes or None, raw_url or None) of one `images` entry; counts what could not be read."""
    if isinstance(image, dict):
        image = image.get("bytes") or image.get("path")
    if isinstance(image, (bytes, bytearray)):
        return bytes(image), None
    if isinstance(image, str) and "://" in image:
        counts["image_url_not_fetched"] += 1
        return None, image
    if isinstance(image, str):
        path = Path(image) if image_root is None else image_root / image
        if path.is_file():
            return path.read_bytes(), None
        counts["image_file_missing"] += 1
        return None, None
    counts["image_unreadable_entry"] += 1
    return None, None


def row_document(texts: list, images: list, image_root: Path | None,
                 counts: Counter) -> tuple[list[str], list[tuple]]:
    """One row -> (text_list, [(matched_text_index, bytes or None, raw_url?)]), or RowError."""
    if not isinstance(texts, list) or not isinstance(images, list):
        raise RowError("not_lists", "texts and images must both be lists")
    if len(texts) != len(images):
        raise RowError("length_mismatch", f"{len(texts)} texts but {len(images)} images")
    text_list: list[str] = []
    pending: list[tuple] = []             # images waiting for the next text
    placed: list[tuple] = []
    for position, (text, image) in enumerate(zip(texts, images)):
        if (text is None) == (image is None):
            raise RowError("not_one_of_text_or_image",
                           f"position {position} has {'both' if text is not None else 'neither'}")
        if text is not None:
            placed += [(len(text_list), *got) for got in pending]
            pending = []
            text_list.append(str(text))
        else:
            data, url = image_bytes(image, image_root, counts)
            pending.append((data, url) if url else (data,))
    counts["trailing_images_left_out"] += len(pending)
    return text_list, placed


def parquet_rows(paths: list[str]) -> Iterator[tuple[list, list]]:
    """(texts, images) of every row, a record batch at a time."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SystemExit("reading parquet needs pyarrow: pip install 'frozen[documents]'") from None
    for path in paths:
        table = pq.ParquetFile(path)
        columns = table.schema_arrow.names
        missing = {"texts", "images"} - set(columns)
        if missing:
            raise SystemExit(f"{path}: no column(s) {sorted(missing)} (found {columns}); "
                             "expected OBELICS rows with `texts` and `images` lists")
        for batch in table.iter_batches(batch_size=256, columns=["texts", "images"]):
            yield from zip(batch.column("texts").to_pylist(), batch.column("images").to_pylist())


def convert(paths: list[str], out: Path, image_root: Path | None = None,
            per_shard: int = 1000) -> tuple[str, Counter]:
    """Convert parquet files to shards in `out`; returns (brace pattern, counts)."""
    counts: Counter = Counter()
    with DocumentWriter(out, per_shard) as writer:
        for texts, images in parquet_rows(paths):
            counts["rows"] += 1
            try:
                text_list, placed = row_document(texts, images, image_root, counts)
            except RowError as bad:
                counts[f"rows_skipped_{bad.kind}"] += 1
                continue
            writer.add(text_list, placed)
            counts["documents"] += 1
            counts["images"] += len(placed)
        pattern = writer.close()
    return pattern, counts


def expand(specs: list[str]) -> list[str]:
    paths = [p for spec in specs for p in (sorted(glob.glob(spec)) or [spec])]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise SystemExit(f"no such parquet file: {missing[0]}")
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m frozen.data.obelics",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("parquet", nargs="+", help="parquet files or glob patterns")
    parser.add_argument("--out", type=Path, required=True, help="folder for the shards")
    parser.add_argument("--image-root", type=Path, default=None,
                        help="folder that relative image paths are under")
    parser.add_argument("--per-shard", type=int, default=1000, help="documents per shard")
    args = parser.parse_args(argv)
    pattern, counts = convert(expand(args.parquet), args.out, args.image_root, args.per_shard)
    print(", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    print(pattern)


if __name__ == "__main__":
    main()
