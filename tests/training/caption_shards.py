"""Test shards in the img2dataset layout (KEY.jpg / KEY.png, KEY.txt, KEY.json), good and bad.

Images are small solid-color pictures whose caption names the color, so a vision side can
learn something in a few steps.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
from pathlib import Path

from PIL import Image

COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
          "yellow": (225, 195, 30)}


def image_bytes(color: tuple[int, int, int], size=(40, 30), fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def good_sample(key: str, rng: random.Random) -> dict[str, bytes]:
    name = rng.choice(sorted(COLORS))
    fmt = rng.choice(["JPEG", "PNG"])
    ext = "jpg" if fmt == "JPEG" else "png"
    return {"__key__": key, ext: image_bytes(COLORS[name], fmt=fmt),
            "txt": f"a {name} picture".encode(), "json": json.dumps({"key": key}).encode()}


def write_tar(path: Path, samples: list[dict[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for sample in samples:
            for ext, data in sample.items():
                if ext == "__key__":
                    continue
                info = tarfile.TarInfo(f"{sample['__key__']}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def write_good_shards(folder: Path, shards: int, per_shard: int, seed: int = 0) -> str:
    """Write shards 00000.tar ... and return their brace pattern."""
    rng = random.Random(seed)
    for s in range(shards):
        samples = [good_sample(f"{s:05d}{i:04d}", rng) for i in range(per_shard)]
        write_tar(folder / f"{s:05d}.tar", samples)
    return str(folder / f"{{00000..{shards - 1:05d}}}.tar")


def bad_samples(key: str) -> dict[str, dict[str, bytes]]:
    """One sample of each per-sample bad kind, keyed by the kind it must be counted as."""
    jpeg = image_bytes(COLORS["red"])
    png = image_bytes(COLORS["blue"], fmt="PNG")
    bomb = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(bomb, format="PNG")   # 100 M pixels, a few kB
    return {
        "corrupt_image": {"__key__": f"{key}c", "jpg": b"this is not an image" * 20,
                          "txt": b"a corrupt picture"},
        "truncated_image": {"__key__": f"{key}t", "png": png[: len(png) // 2],
                            "txt": b"a truncated picture"},
        "decompression_bomb": {"__key__": f"{key}b", "png": bomb.getvalue(),
                               "txt": b"a huge picture"},
        "missing_image": {"__key__": f"{key}m", "txt": b"a caption without image"},
        "missing_caption": {"__key__": f"{key}n", "jpg": jpeg},
        "empty_caption": {"__key__": f"{key}e", "jpg": jpeg, "txt": b"  \n "},
    }


def truncate_inside_sample(path: Path, index: int) -> None:
    """Cut a tar written by write_tar in the middle of the data of sample `index`'s first member."""
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    keys = []
    for m in members:
        key = m.name.split(".")[0]
        if key not in keys:
            keys.append(key)
    first = next(m for m in members if m.name.split(".")[0] == keys[index])
    data = path.read_bytes()
    path.write_bytes(data[: first.offset_data + max(1, first.size // 2)])
