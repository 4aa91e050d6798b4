"""Shards: expanding shard specs, opening any URL webdataset opens, reading a tar into samples,
and deciding which shards each (rank, worker) reads.

Reading is done here rather than with webdataset's `tarfile_to_samples` so that a truncated
tar counts once, drops only the sample it cut, and never merges into the next shard.
"""

from __future__ import annotations

import random
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlparse

from .skips import SkipCounter


def expand_shards(spec: str | Sequence[str]) -> list[str]:
    """'dir/{00000..00009}.tar' (also '::'-joined) or a list of such -> list of shard URLs."""
    from webdataset.shardlists import expand_urls

    specs = [spec] if isinstance(spec, str) else list(spec)
    urls = [url for s in specs for url in expand_urls(str(s))]
    if not urls:
        raise ValueError(f"no shards in {spec!r}")
    return urls


def is_local(url: str) -> bool:
    return urlparse(url).scheme in ("", "file")


def missing_local_shards(urls: Sequence[str]) -> list[str]:
    """Local shard paths that do not exist (URLs are not checked)."""
    paths = {u: urlparse(u).path if u.startswith("file:") else u for u in urls if is_local(u)}
    return [u for u, path in paths.items() if not Path(path).is_file()]


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


def read_samples(url: str, counter: SkipCounter, subset: tuple[int, int] = (0, 1)) -> Iterator[dict]:
    """Samples of one shard as dicts {'__key__', '__url__', ext: bytes}.

    subset (i, k): keep only samples whose index in the shard is i modulo k (used when several
    workers share one shard). Unreadable and truncated shards are counted, never raised.
    """
    index, count = subset
    try:
        stream = open_shard(url)
    except Exception as err:  # missing file, failing pipe, network error
        counter.skip("unreadable_shard", url, err)
        return
    position = -1
    current: dict | None = None
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for info in tar:
                tar.members = []      # stream mode would otherwise keep every header
                if not info.isreg():
                    continue
                key, ext = split_name(info.name)
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
        if current is not None and position % count == index:
            yield current
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        counter.skip("truncated_tar", url, err)   # the sample being read is lost with it
    finally:
        try:
            stream.close()
        except Exception:  # a failed pipe reports its status on close: already counted
            pass


def partition(urls: Sequence[str], slot: int, slots: int) -> list[tuple[str, tuple[int, int]]]:
    """The shards (with sample subsets) read by global worker `slot` of `slots` in exact mode.

    With at least as many shards as slots, shards are dealt round-robin. With fewer, several
    slots share a shard and each keeps every k-th sample, so no slot is left without data.
    """
    n = len(urls)
    if n >= slots:
        return [(u, (0, 1)) for u in urls[slot::slots]]
    sharing = len(range(slot % n, slots, n))
    return [(urls[slot % n], (slot // n, sharing))]


def shard_stream(urls: Sequence[str], slot: int, slots: int, resampled: bool,
                 rng: random.Random, shuffle: bool) -> Iterator[tuple[str, tuple[int, int]]]:
    """An endless stream of (shard, subset) for one global worker.

    resampled: shards drawn with replacement from all of them (each worker its own seed).
    otherwise: this worker's partition, pass after pass (reshuffled each pass when `shuffle`).
    """
    if resampled:
        while True:
            yield rng.choice(urls), (0, 1)
    own = partition(urls, slot, slots)
    while True:
        order = list(own)
        if shuffle:
            rng.shuffle(order)
        yield from order
