"""Test data for interleaved documents: MMC4-layout shards (images inline as base64, as
OpenFlamingo's shards hold them, or as named members), OBELICS-layout parquet, and a shard
with one document of every bad kind."""

from __future__ import annotations

import base64
import io
import json
import random
from pathlib import Path

from PIL import Image

from caption_shards import COLORS, image_bytes, write_tar


def mmc4_json(texts: list[str], images: list[tuple[int, bytes]]) -> bytes:
    """An MMC4 document with its images inline (image_base64), plus fields the reader ignores."""
    info = [{"matched_text_index": i, "image_base64": base64.b64encode(data).decode(),
             "raw_url": f"http://example.com/{n}.jpg", "matched_sim": 0.3}
            for n, (i, data) in enumerate(images)]
    return json.dumps({"url": "http://example.com", "text_list": texts,
                       "image_info": info}).encode()


def good_document(key: str, rng: random.Random, images: int = 2) -> dict[str, bytes]:
    """An intro sentence, then per image a sentence naming its color."""
    texts, placed = ["some pictures follow."], []
    for _ in range(images):
        name = rng.choice(sorted(COLORS))
        placed.append((len(texts), image_bytes(COLORS[name], fmt=rng.choice(["JPEG", "PNG"]))))
        texts.append(f"a {name} picture.")
    return {"__key__": key, "json": mmc4_json(texts, placed)}


def bad_documents() -> list[tuple[dict[str, bytes], dict[str, dict[str, int]]]]:
    """Documents with problems, each with what it must be counted as under either bad_image
    policy ({policy: {kind or "good": count}})."""
    red, blue = image_bytes(COLORS["red"]), image_bytes(COLORS["blue"], fmt="PNG")
    texts = ["intro.", "a red picture.", "a blue picture."]
    corrupt = b"this is not an image" * 10
    both = lambda counts: {"drop_image": counts, "drop_document": counts}
    named = json.dumps({"text_list": texts, "image_info": [
        {"matched_text_index": 1, "image_name": "absent.jpg"}]}).encode()
    bad_b64 = json.loads(mmc4_json(texts, [(1, red), (2, blue)]))
    bad_b64["image_info"][1]["image_base64"] = "%%% not base64 %%%"
    return [
        ({"__key__": "xnojson", "jpg": red}, both({"bad_document": 1})),
        ({"__key__": "xinvalid", "json": b"{not json"}, both({"bad_document": 1})),
        ({"__key__": "xindex", "json": mmc4_json(texts, [(3, red)])}, both({"bad_document": 1})),
        ({"__key__": "xmany", "json": mmc4_json(texts, [(1, red)] * 5)}, both({"too_many_images": 1})),
        ({"__key__": "xnone", "json": mmc4_json(texts, [])}, both({"too_few_images": 1})),
        ({"__key__": "xcorrupt", "json": mmc4_json(texts, [(1, red), (2, corrupt)])},
         {"drop_image": {"good": 1, "corrupt_image": 1}, "drop_document": {"corrupt_image": 1}}),
        ({"__key__": "xcut", "json": mmc4_json(texts, [(1, blue[: len(blue) // 2]), (2, red)])},
         {"drop_image": {"good": 1, "truncated_image": 1}, "drop_document": {"truncated_image": 1}}),
        ({"__key__": "xb64", "json": json.dumps(bad_b64).encode()},
         {"drop_image": {"good": 1, "corrupt_image": 1}, "drop_document": {"corrupt_image": 1}}),
        ({"__key__": "xmissing", "json": named},
         {"drop_image": {"too_few_images": 1}, "drop_document": {"missing_image": 1}}),
    ]


def write_documents(path: Path, documents: list[dict[str, bytes]]) -> Path:
    return write_tar(path, documents)


def write_good_documents(folder: Path, shards: int, per_shard: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    for s in range(shards):
        write_tar(folder / f"{s:05d}.tar",
                  [good_document(f"d{s:02d}{i:04d}", rng, rng.randint(1, 3)) for i in range(per_shard)])
    return str(folder / f"{{00000..{shards - 1:05d}}}.tar")


def png(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 20), COLORS[color]).save(out, format="PNG")
    return out.getvalue()


def write_obelics(folder: Path, image_root: Path) -> tuple[list[Path], dict[str, int]]:
    """OBELICS parquet files, good rows and bad, with images as bytes, as paths or URLs, and
    as {"bytes", "path"} structs; returns the files and the converter's expected counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    image_root.mkdir(parents=True, exist_ok=True)
    (image_root / "green.png").write_bytes(png("green"))
    red, blue, yellow = png("red"), png("blue"), png("yellow")
    as_bytes = [
        (["an intro.", None, "a red picture.", None, "a blue one."], [None, red, None, blue, None]),
        ([None, "a yellow picture first.", None, "then red."], [yellow, None, red, None]),
        (["only text then an image.", None, "more text.", None], [None, blue, None, red]),
        (["both at once."], [red]),                          # text and image at one position
        (["two texts", "but"], [None]),                      # lists of different lengths
    ]
    as_paths = [
        (["start.", None, "a green picture.", None, "a linked picture.", None, "a lost one."],
         [None, "green.png", None, "https://example.com/x.jpg", None, "nowhere.png", None]),
    ]
    as_structs = [
        ([None, "a dict picture."], [{"bytes": red, "path": None}, None]),
        ([None, "a dict path picture."], [{"bytes": None, "path": "green.png"}, None]),
    ]
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    files = []
    for name, rows, kind in (("bytes", as_bytes, pa.binary()), ("paths", as_paths, pa.string()),
                             ("structs", as_structs, struct)):
        table = pa.table({"texts": pa.array([r[0] for r in rows], pa.list_(pa.string())),
                          "images": pa.array([r[1] for r in rows], pa.list_(kind)),
                          "url": pa.array([f"http://example.com/{name}"] * len(rows))})
        files.append(folder / f"{name}.parquet")
        pq.write_table(table, files[-1])
    expected = {"rows": 8, "documents": 6, "images": 10, "trailing_images_left_out": 1,
                "rows_skipped_not_one_of_text_or_image": 1, "rows_skipped_length_mismatch": 1,
                "image_url_not_fetched": 1, "image_file_missing": 1}
    return files, expected
