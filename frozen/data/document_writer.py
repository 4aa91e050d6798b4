"""Writing interleaved documents as MMC4-layout webdataset shards.

Each document is `KEY.json` ({"text_list", "image_info"}, see frozen.data.documents) plus one
member `KEY.<i>.<ext>` per image, named in its image_info entry by `image_name`. An image
without bytes keeps its entry (and any `raw_url`) with no member, so the reader counts it as
missing instead of it vanishing silently. Shards are written under a temporary name and
renamed when complete (frozen.atomic.replacing).
"""

from __future__ import annotations

import io
import json
import tarfile
from contextlib import ExitStack
from pathlib import Path

from ..atomic import replacing
from .shards import shard_pattern

# Leading bytes -> the member extension (the reader decodes by content, not by extension).
_MAGIC = ((b"\xff\xd8", "jpg"), (b"\x89PNG", "png"), (b"GIF8", "gif"), (b"BM", "bmp"))


def image_extension(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return next((ext for magic, ext in _MAGIC if data.startswith(magic)), "img")


class DocumentWriter:
    """Documents -> shards `out/00000.tar`, `out/00001.tar`, ... of `per_shard` documents."""

    def __init__(self, out: Path, per_shard: int = 1000):
        if per_shard < 1:
            raise ValueError(f"per_shard={per_shard}: expected at least 1")
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.per_shard = per_shard
        self.paths: list[Path] = []
        self.documents = 0
        self._tar: tarfile.TarFile | None = None
        self._shard = ExitStack()          # the open shard's replacing(path), reused per shard

    def add(self, texts: list[str], images: list[tuple], **extra) -> str:
        """Write one document: its sentences, and per image (matched_text_index, bytes or None)
        or (matched_text_index, bytes or None, raw_url); `extra` goes into the JSON as is."""
        if self.documents % self.per_shard == 0:
            self._next_shard()
        key = f"{self.documents:09d}"
        info = []
        for i, (index, data, *url) in enumerate(images):
            entry: dict = {"matched_text_index": index, **({"raw_url": url[0]} if url else {})}
            if data is not None:
                entry["image_name"] = f"{i}.{image_extension(data)}"
                self._member(f"{key}.{entry['image_name']}", data)
            info.append(entry)
        document = {"text_list": list(texts), "image_info": info, **extra}
        self._member(f"{key}.json", json.dumps(document).encode())
        self.documents += 1
        return key

    def _member(self, name: str, data: bytes) -> None:
        member = tarfile.TarInfo(name)
        member.size = len(data)
        self._tar.addfile(member, io.BytesIO(data))

    def _next_shard(self) -> None:
        self._finish_shard()
        path = self.out / f"{len(self.paths):05d}.tar"
        self.paths.append(path)
        self._tar = tarfile.open(self._shard.enter_context(replacing(path)), "w")

    def _finish_shard(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
            self._shard.close()             # the shard replaces its temporary name

    def close(self) -> str:
        """Finish the last shard; returns the shards' brace pattern ('' if none were written)."""
        self._finish_shard()
        return shard_pattern(self.paths)

    def __enter__(self) -> "DocumentWriter":
        return self

    def __exit__(self, *exc) -> None:
        self._finish_shard()
