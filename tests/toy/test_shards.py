"""Shapes-world training shards: img2dataset layout, plain captions, no held-out pairs."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
from PIL import Image

from frozen.toy.captions import caption
from frozen.toy.render import HELD_OUT, Attributes
from frozen.toy.shards import write_dataset


def test_shards_hold_plain_captions_and_no_held_out_pairs(tmp_path):
    patterns = write_dataset(tmp_path, train=300, val=20, progress=False)
    assert patterns["train"].endswith("00000.tar") and patterns["val"].endswith("00000.tar")
    seen = set()
    with tarfile.open(patterns["train"]) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}
    keys = sorted({name.rsplit(".", 1)[0] for name in members})
    assert len(keys) == 300
    for key in keys:
        attributes = Attributes(**json.loads(members[f"{key}.json"]))
        assert (attributes.color, attributes.shape) not in HELD_OUT
        assert members[f"{key}.txt"].decode() == caption(attributes, "plain")
        image = Image.open(io.BytesIO(members[f"{key}.png"]))
        assert image.size == (64, 64) and image.mode == "RGB"
        seen.add((attributes.color, attributes.shape))
    assert len(seen) == 18                  # every train color-shape pair appears


def test_shards_are_deterministic(tmp_path):
    a = write_dataset(tmp_path / "a", train=20, val=5, progress=False)
    b = write_dataset(tmp_path / "b", train=20, val=5, progress=False)
    for split in ("train", "val"):
        with tarfile.open(a[split]) as ta, tarfile.open(b[split]) as tb:
            assert [ta.extractfile(m).read() for m in ta] == [tb.extractfile(m).read() for m in tb]
    with tarfile.open(a["train"]) as ta, tarfile.open(a["val"]) as tv:
        first = lambda t: np.asarray(Image.open(io.BytesIO(t.extractfile(t.next()).read())))  # noqa: E731
        assert not np.array_equal(first(ta), first(tv))      # val is drawn with another seed
