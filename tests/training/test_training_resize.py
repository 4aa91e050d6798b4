"""Pre-resized shards: the longer side is the target size, captions are kept, bad images are
left out and counted."""

from __future__ import annotations

import io
import tarfile

import pytest
from PIL import Image

import caption_shards as shards
from frozen.data import resize


def _members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def test_resized_shards_keep_captions_and_shrink_images(tmp_path):
    big = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 40, 40)).save(big, format="PNG")
    samples = [{"__key__": "a", "png": big.getvalue(), "txt": b"a red picture", "json": b"{}"},
               {"__key__": "b", "jpg": b"not an image", "txt": b"broken"}]
    source = tmp_path / "in" / "00000.tar"
    source.parent.mkdir()
    shards.write_tar(source, samples)
    resize.main([str(source), str(tmp_path / "out"), "--size", "64"])
    members = _members(tmp_path / "out" / "00000.tar")
    assert set(members) == {"a.jpg", "a.txt", "a.json"}
    assert members["a.txt"] == b"a red picture"
    image = Image.open(io.BytesIO(members["a.jpg"]))
    assert image.size == (64, 48)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["00000.tar"]     # no temporary file


def test_missing_shard_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        resize.main([str(tmp_path / "nope.tar"), str(tmp_path / "out")])
    assert "shards do not exist (first:" in capsys.readouterr().err
