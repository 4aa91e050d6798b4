"""Shards: expanding shard specs, opening any URL webdataset opens, reading a tar into samples,
and deciding which shards each (rank, worker) reads.

Reading is done here rather than with webdataset's `tarfile_to_samples` so that a bad shard
counts exactly once under one kind and never merges into the next shard. Python's tarfile
ends silently where a tar is cut inside a header or exactly at a member boundary; such a cut
is found here by the end-of-archive marker (two zero blocks) missing where tarfile stopped.
A shard without that marker is `truncated_tar`, even when every member in it is complete:
the members that followed the cut are lost, and so is the sample being read at the cut.
"""

from __future__ import annotations

import bz2
import collections
import glob
import gzip
import lzma
import os
import random
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlparse

from .skips import DataError, SkipCounter

END_OF_ARCHIVE = 2 * tarfile.BLOCKSIZE
_COMPRESSED = ((b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f)), (b"BZh", bz2.BZ2File),
               (b"\xfd7zXZ\x00", lzma.LZMAFile))
_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError)


def expand_shards(spec: str | Sequence[str]) -> list[str]:
    """Shard spec(s) -> shard URLs. A spec is a path, a brace pattern ('dir/{00000..00009}.tar',
    also '::'-joined), a shell glob ('dir/*.tar'), a folder (every *.tar in it, sorted) or any
    URL webdataset opens; or a list of these."""
    from webdataset.shardlists import expand_urls

    specs = [spec] if isinstance(spec, str) else list(spec)
    urls = [found for s in specs for url in expand_urls(str(s)) for found in _expand_local(url)]
    if not urls:
        raise DataError(f"no shards in {spec!r}")
    return urls


def shard_pattern(paths: Sequence[Path]) -> str:
    """Numbered shards written in order ('out/00000.tar' ... 'out/00007.tar') -> the one spec
    that expand_shards reads back: the path itself for one shard, else a brace pattern; ''
    for none."""
    if len(paths) <= 1:
        return str(paths[0]) if paths else ""
    return str(Path(paths[0]).parent / f"{{{Path(paths[0]).stem}..{Path(paths[-1]).stem}}}.tar")


def _expand_local(url: str) -> list[str]:
    """A local folder -> its *.tar files; a local glob -> its matches; anything else as it is."""
    if not is_local(url):
        return [url]
    path = local_path(url)
    if os.path.isdir(path):
        found = sorted(glob.glob(os.path.join(glob.escape(path), "*.tar")))
        if not found:
            raise DataError(f"shard folder {path!r} holds no shards (no *.tar files)")
        return found
    if any(c in path for c in "*?[") and not os.path.exists(path):
        found = sorted(p for p in glob.glob(path) if os.path.isfile(p))
        if not found:
            raise DataError(f"shards not found: no file matches {path!r}")
        return found
    return [url]


def is_local(url: str) -> bool:
    return urlparse(url).scheme in ("", "file")


def local_path(url: str) -> str:
    return urlparse(url).path if url.startswith("file:") else url


def missing_local_shards(urls: Sequence[str]) -> list[str]:
    """Local shard paths that do not exist (URLs are not checked)."""
    return [u for u in urls if is_local(u) and not Path(local_path(u)).is_file()]


def check_shards(urls: Sequence[str], name: str) -> list[str]:
    """Raise DataError when no local shard of `urls` exists; return the missing ones."""
    missing = missing_local_shards(urls)
    if missing and len(missing) == len(urls):
        what = f"{missing[0]!r}" if len(urls) == 1 else f"none of the {len(urls)} (first: {missing[0]!r})"
        raise DataError(f"{name} shards not found: {what}")
    return missing


def open_shard(url: str):
    """A readable binary stream for a local path, pipe:, http(s), gs:, hf: ... or any fsspec URL."""
    from webdataset.gopen import gopen, gopen_schemes

    if is_local(url) or urlparse(url).scheme in gopen_schemes:
        return gopen(url)
    import fsspec  # s3://, az:// and friends, when their fsspec backend is installed

    return fsspec.open(url, "rb").open()


def split_name(name: str) -> tuple[str | None, str | None]:
    """'dir/000123.jpg' -> ('dir/000123', 'jpg'): the key is everything before the first dot."""
    from webdataset.tariterators import base_plus_ext

    return base_plus_ext(name)


class _Prefixed:
    """A stream with its first bytes already read (to sniff the compression) put back."""

    def __init__(self, head: bytes, stream):
        self.head, self.stream = head, stream

    def read(self, size: int = -1) -> bytes:
        if not self.head:
            return self.stream.read(size)
        if size is None or size < 0:
            out, self.head = self.head + self.stream.read(), b""
            return out
        out, self.head = self.head[:size], self.head[size:]
        return out if len(out) == size else out + self.stream.read(size - len(out))


class _TailReader:
    """Passes reads through, counting them and keeping the last few chunks, so that the bytes
    where tarfile stopped can be checked for the end-of-archive marker afterwards."""

    def __init__(self, stream):
        self.stream = stream
        self.pos = 0
        self.chunks: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=4)

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        if data:
            self.chunks.append((self.pos, data))
            self.pos += len(data)
        return data

    def bytes_at(self, offset: int, size: int) -> bytes:
        """Bytes [offset, offset + size) of the stream, reading on as needed; short at its end."""
        while self.pos < offset + size and self.read(offset + size - self.pos):
            pass
        kept = b"".join(chunk for _, chunk in self.chunks)
        start = offset - self.chunks[0][0] if self.chunks else 0
        return kept[start:start + size] if start >= 0 else b""


def _decompressed(stream):
    head = stream.read(6)
    prefixed = _Prefixed(head, stream)
    opener = next((o for magic, o in _COMPRESSED if head.startswith(magic)), None)
    return opener(prefixed) if opener is not None else prefixed


def read_samples(url: str, counter: SkipCounter, subset: tuple[int, int] = (0, 1)) -> Iterator[dict]:
    """Samples of one shard as dicts {'__key__', '__url__', ext: bytes}.

    subset (i, k): keep only samples whose index in the shard is i modulo k (used when several
    workers share one shard). Missing, unreadable and truncated shards are counted, never raised.
    """
    if is_local(url) and not Path(local_path(url)).is_file():
        counter.skip("missing_shard", url, "no such file")
        return
    try:
        stream = open_shard(url)
    except Exception as err:  # failing pipe, network error, permission
        counter.skip("unreadable_shard", url, err)
        return
    try:
        yield from _tar_samples(url, stream, counter, subset)
    finally:
        try:
            stream.close()
        except Exception:  # a failed pipe reports its status on close: already counted
            pass


def _tar_samples(url: str, raw, counter: SkipCounter, subset: tuple[int, int]) -> Iterator[dict]:
    index, count = subset
    position, current = -1, None
    try:
        stream = _TailReader(_decompressed(raw))
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                tar.members = []      # stream mode would otherwise keep every header
                key, ext = split_name(info.name) if info.isreg() else (None, None)
                if key is None or key.split("/")[-1].startswith("__"):
                    continue
                if current is None or key != current["__key__"]:
                    if current is not None and position % count == index:
                        yield current
                    position += 1
                    current = {"__key__": key, "__url__": url}
                if position % count != index:
                    continue          # not ours: do not even read the member's data
                member = tar.extractfile(info)
                current[ext.lower()] = member.read() if member is not None else b""
            end = tar.offset
        if stream.bytes_at(end, END_OF_ARCHIVE) != bytes(END_OF_ARCHIVE):
            raise tarfile.ReadError(f"no end-of-archive marker at byte {end}: cut or damaged there")
    except _TAR_ERRORS as err:
        counter.skip("truncated_tar", url, err)   # the sample being read is lost with it
        return
    if current is not None and position % count == index:
        yield current


def partition(urls: Sequence[str], slot: int, slots: int) -> list[tuple[str, tuple[int, int]]]:
    """The shards (with sample subsets) read by global worker `slot` of `slots` in exact mode.

    With at least as many shards as slots, shards are dealt round-robin. With fewer, several
    slots share a shard and each keeps every k-th sample. (A slot whose subset holds no sample,
    in a shard smaller than its sharers, falls back to all shards: see CaptionStream.)
    """
    n = len(urls)
    if n >= slots:
        return [(u, (0, 1)) for u in urls[slot::slots]]
    sharing = len(range(slot % n, slots, n))
    return [(urls[slot % n], (slot // n, sharing))]


def shard_passes(urls: Sequence[str], slot: int, slots: int, resampled: bool,
                 rng: random.Random, shuffle: bool) -> Iterator[list[tuple[str, tuple[int, int]]]]:
    """Endless passes of (shard, subset) for one global worker.

    resampled: each pass is one shard drawn with replacement from all (each worker its own seed).
    otherwise: each pass is this worker's partition (reshuffled each pass when `shuffle`).
    """
    own = partition(urls, slot, slots)
    while True:
        if resampled:
            yield [(rng.choice(urls), (0, 1))]
            continue
        order = list(own)
        if shuffle:
            rng.shuffle(order)
        yield order
