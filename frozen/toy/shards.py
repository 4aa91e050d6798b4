"""Training data of the shapes world as image-caption shards in the img2dataset layout.

    python -m frozen.toy.shards --out data/shapes --train 16000 --val 512

Each sample is KEY.png (a fresh render), KEY.txt (its plain caption) and KEY.json (its
attributes). Only the "train" split is drawn: the held-out color-shape pairs never appear in
any image written here, in any size or position.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import tarfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from frozen.atomic import replacing
from frozen.data.shards import shard_pattern
from frozen.toy.captions import caption
from frozen.toy.render import render, sample_attributes, sample_scene


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_split(folder: Path, samples: int, seed: int, per_shard: int = 2000,
                progress: bool = True, desc: str = "shards") -> list[Path]:
    """Write `samples` train-split renders into tars of `per_shard` samples; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    bar = tqdm(total=samples, unit="img", desc=desc, disable=not progress)
    for shard, start in enumerate(range(0, samples, per_shard)):
        path = folder / f"{shard:05d}.tar"
        with replacing(path) as tmp, tarfile.open(tmp, "w") as tar:
            for index in range(start, min(start + per_shard, samples)):
                attributes = sample_attributes(rng, "train")
                image = render(sample_scene(rng, attributes))
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                key = f"{shard:05d}{index - start:05d}"
                _add(tar, f"{key}.png", buffer.getvalue())
                _add(tar, f"{key}.txt", caption(attributes, "plain").encode())
                _add(tar, f"{key}.json", json.dumps(dataclasses.asdict(attributes)).encode())
                bar.update(1)
        paths.append(path)
    bar.close()
    return paths


def write_dataset(out: Path, train: int, val: int, seed: int = 0, progress: bool = True) -> dict:
    """train/ and val/ shards under `out` (val uses another seed); returns their brace patterns."""
    train_paths = write_split(out / "train", train, seed, progress=progress, desc="train shards")
    val_paths = write_split(out / "val", val, seed + 1_000_003, progress=progress, desc="val shards")
    return {"train": shard_pattern(train_paths), "val": shard_pattern(val_paths)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m frozen.toy.shards", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/shapes"))
    parser.add_argument("--train", type=int, default=16000, help="training samples")
    parser.add_argument("--val", type=int, default=512, help="validation samples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    patterns = write_dataset(args.out, args.train, args.val, args.seed)
    print(json.dumps(patterns))


if __name__ == "__main__":
    main()
