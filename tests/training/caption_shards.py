"""Test shards in the img2dataset layout (KEY.jpg / KEY.png, KEY.txt, KEY.json), good and bad.

Images are small solid-color pictures whose caption names the color, so a vision side can
learn something in a few steps. The bad ones are written here byte by byte, independently of
how the pipeline classifies them: one maker per kind, shards salted with them, tars cut at
chosen byte offsets, and the samples a cut tar still holds complete, computed from its layout.
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


def bomb_png() -> bytes:
    bomb = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(bomb, format="PNG")   # 100 M pixels, a few kB
    return bomb.getvalue()


def unsupported_jpeg() -> bytes:
    """A complete JPEG whose frame header says 'lossless arithmetic' (SOF15): undecodable."""
    return image_bytes(COLORS["green"]).replace(b"\xff\xc0", b"\xff\xcf", 1)


def jpeg_cut(where: str) -> bytes:
    """A JPEG cut inside its header (before the image data) or inside its image data."""
    jpeg = image_bytes(COLORS["yellow"])
    scan = jpeg.index(b"\xff\xda")
    return jpeg[: scan // 2] if where == "header" else jpeg[: (scan + len(jpeg)) // 2]


def bad_samples(key: str) -> dict[str, dict[str, bytes]]:
    """One sample of each per-sample bad kind, keyed by the kind it must be counted as."""
    jpeg = image_bytes(COLORS["red"])
    png = image_bytes(COLORS["blue"], fmt="PNG")
    return {
        "corrupt_image": {"__key__": f"{key}c", "jpg": b"this is not an image" * 20,
                          "txt": b"a corrupt picture"},
        "truncated_image": {"__key__": f"{key}t", "png": png[: len(png) // 2],
                            "txt": b"a truncated picture"},
        "decompression_bomb": {"__key__": f"{key}b", "png": bomb_png(), "txt": b"a huge picture"},
        "missing_image": {"__key__": f"{key}m", "txt": b"a caption without image"},
        "missing_caption": {"__key__": f"{key}n", "jpg": jpeg},
        "empty_caption": {"__key__": f"{key}e", "jpg": jpeg, "txt": b"  \n "},
        "undecodable_caption": {"__key__": f"{key}u", "jpg": jpeg,
                                "txt": "une caf\u00e9 rouge".encode("latin-1")},
    }


# Salted shards: kind -> makers of bad samples of that kind (several variants per kind).
SALT = {
    "corrupt_image": [lambda k: {"__key__": k, "jpg": b"\x00garbage" * 30, "txt": b"a picture"},
                      lambda k: {"__key__": k, "jpg": unsupported_jpeg(), "txt": b"a picture"}],
    "truncated_image": [lambda k: {"__key__": k, "jpg": jpeg_cut("header"), "txt": b"a picture"},
                        lambda k: {"__key__": k, "jpg": jpeg_cut("data"), "txt": b"a picture"}],
    "decompression_bomb": [lambda k: {"__key__": k, "png": bomb_png(), "txt": b"a huge picture"}],
    "missing_image": [lambda k: {"__key__": k, "txt": b"a caption alone"}],
    "missing_caption": [lambda k: {"__key__": k, "jpg": image_bytes(COLORS["red"])}],
    "empty_caption": [lambda k: {"__key__": k, "jpg": image_bytes(COLORS["red"]), "txt": b""}],
    "undecodable_caption": [lambda k: {"__key__": k, "jpg": image_bytes(COLORS["red"]),
                                       "txt": b"\xff\xfe a red picture"},
                            lambda k: {"__key__": k, "jpg": image_bytes(COLORS["red"]),
                                       "txt": "caf\u00e9".encode("latin-1")}],
}


def write_salted_shards(folder: Path, shards: int = 3, per_shard: int = 40,
                        bad_per_shard: int = 10, seed: int = 0) -> dict[str, int]:
    """Shards of `per_shard` samples, `bad_per_shard` of them bad (kinds and variants in turn,
    at random places); returns the expected count per kind, and 'good'."""
    rng = random.Random(seed)
    makers = [(kind, make) for kind, variants in SALT.items() for make in variants]
    expected = {"good": 0}
    for s in range(shards):
        samples = [good_sample(f"{s:02d}g{i:03d}", rng) for i in range(per_shard - bad_per_shard)]
        for j in range(bad_per_shard):
            kind, make = makers[(s * bad_per_shard + j) % len(makers)]
            samples.insert(rng.randrange(len(samples) + 1), make(f"{s:02d}b{j:03d}"))
            expected[kind] = expected.get(kind, 0) + 1
        write_tar(folder / f"{s:05d}.tar", samples)
        expected["good"] += per_shard - bad_per_shard
    return expected


def sample_layout(path: Path) -> tuple[list[tuple[str, int]], int]:
    """[(sample key, offset of its first header)] of a tar, and where its end-of-archive
    marker starts."""
    firsts: list[tuple[str, int]] = []
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    for m in members:
        key = m.name.split(".")[0]
        if not firsts or firsts[-1][0] != key:
            firsts.append((key, m.offset))
    last = members[-1]
    return firsts, last.offset_data + -(-last.size // 512) * 512


def complete_samples_before(path: Path, cut: int) -> list[str]:
    """The keys a reader must still give from `path` cut to `cut` bytes: every sample whose
    successor's first header is wholly before the cut (nothing later is known to be complete),
    and all of them when the end-of-archive marker (two zero blocks) is whole."""
    firsts, end = sample_layout(path)
    if cut >= end + 1024:
        return [key for key, _ in firsts]
    return [key for (key, _), (_, next_header) in zip(firsts, firsts[1:]) if cut >= next_header + 512]


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
