"""CaptionStream: image-caption shards -> training batches, as a PyTorch IterableDataset.

Per (rank, worker):  shards (resampled, or an exact split)  -> tar samples -> shuffle buffer
-> decode + preprocess (skipping bad samples) -> pack into prompts -> batch -> model.collate.

Every rank yields exactly `batches` batches per epoch, whatever the number of shards or
workers, so ranks never wait on each other at the end of an epoch. Tiny or uneven data never
starves a worker: a worker whose exact share holds no sample (a 1-sample shard split among 4
workers) reads every shard instead, and a worker that runs through its share starts it again,
so it still yields its batches from the data that exists; only data with no usable pair at
all stops the run (DataError). Each worker's stream is
seeded from (seed, rank, worker, start step, pass), so runs are reproducible and a resumed run
does not replay the data it already saw. Each batch carries the worker's good / skipped counts
since its previous batch.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from frozen.images import MAX_PIXELS
from frozen.prompts import PromptBatch

from .decode import Pair, decode_pair
from .packing import Packer
from .shards import read_samples, shard_passes
from .skips import SampleSkipped, SkipCounter


@dataclasses.dataclass
class TrainBatch:
    prompts: PromptBatch
    tally: torch.Tensor     # (1 + len(SKIP_KINDS),) long: [good pairs, skips per kind]
    keys: list[str]         # the pairs' sample keys, in order

    @property
    def num_pairs(self) -> int:
        return self.prompts.num_images

    def to(self, device: torch.device | str) -> "TrainBatch":
        return TrainBatch(self.prompts.to(device), self.tally, self.keys)

    def pin_memory(self) -> "TrainBatch":
        fields = {f.name: getattr(self.prompts, f.name) for f in dataclasses.fields(self.prompts)}
        pinned = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in fields.items()}
        return TrainBatch(PromptBatch(**pinned), self.tally, self.keys)


def worker_share(total: int, worker: int, num_workers: int) -> int:
    """How many of `total` batches worker `worker` of `num_workers` yields (sums to total)."""
    return total // num_workers + (1 if worker < total % num_workers else 0)


class CaptionStream(torch.utils.data.IterableDataset):
    """Batches from image-caption shards for one rank. See the module docstring.

    urls: expanded shard URLs. transform: the model's image_transform (picklable).
    collate: prompts -> PromptBatch (the model's collate). batches: per rank per epoch.
    resampled: draw shards with replacement (default for training) instead of an exact split.
    shuffle_buffer: samples held for shuffling (0: keep shard order, no shuffling at all).
    """

    def __init__(self, urls: Sequence[str], transform: Callable[[Any], torch.Tensor],
                 collate: Callable[[list], PromptBatch], batch_size: int, batches: int, *,
                 packer: Packer | None = None, resampled: bool = True, shuffle_buffer: int = 1000,
                 seed: int = 0, rank: int = 0, world_size: int = 1, start_step: int = 0,
                 max_pixels: int = MAX_PIXELS, log_interval: float = 60.0,
                 stall_limit: int = 10_000, name: str = "train"):
        super().__init__()
        if not urls:
            raise ValueError("CaptionStream needs at least one shard")
        self.urls = list(urls)
        self.transform = transform
        self.collate = collate
        self.batch_size = batch_size
        self.batches = batches
        self.packer = packer or Packer(1)
        self.resampled = resampled
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start_step = start_step
        self.max_pixels = max_pixels
        self.log_interval = log_interval
        self.stall_limit = stall_limit
        self.name = name
        self._passes = 0      # iterations started by this copy (persistent workers keep it)

    def __len__(self) -> int:
        return self.batches

    def _worker(self) -> tuple[int, int]:
        info = torch.utils.data.get_worker_info()
        return (0, 1) if info is None else (info.id, info.num_workers)

    def __iter__(self) -> Iterator[TrainBatch]:
        worker, num_workers = self._worker()
        self._passes += 1
        rng = random.Random(f"{self.seed}/{self.rank}/{worker}/{self.start_step}/{self._passes}")
        counter = SkipCounter(self.log_interval, self.stall_limit,
                              f"{self.name} rank {self.rank} worker {worker}")
        slot, slots = self.rank * num_workers + worker, self.world_size * num_workers
        samples = self._samples(slot, slots, rng, counter)
        if self.shuffle_buffer > 0:
            from webdataset.filters import shuffle

            samples = shuffle(self.shuffle_buffer, initial=self.shuffle_buffer, rng=rng)(samples)
        groups = self.packer(self._pairs(samples, counter))
        for _ in range(worker_share(self.batches, worker, num_workers)):
            rows = [next(groups) for _ in range(self.batch_size)]
            yield TrainBatch(self.collate([self.packer.prompt(g) for g in rows]), counter.take(),
                             [pair.key for g in rows for pair in g])

    def _samples(self, slot: int, slots: int, rng: random.Random,
                 counter: SkipCounter) -> Iterator[dict]:
        """Raw samples, endlessly: pass after pass over this worker's shards. In an exact split,
        a whole pass without one sample switches to all shards, read whole in random order."""
        passes = shard_passes(self.urls, slot, slots, self.resampled, rng,
                              shuffle=self.shuffle_buffer > 0)
        fallback = False
        while True:
            shards = ([(url, (0, 1)) for url in rng.sample(self.urls, len(self.urls))]
                      if fallback else next(passes))
            found_any = False
            for url, subset in shards:
                found = False
                for sample in read_samples(url, counter, subset):
                    found = found_any = True
                    yield sample
                if not found and subset == (0, 1):
                    counter.stalled()     # a whole shard without a sample: no progress
            fallback = fallback or (not found_any and not self.resampled)

    def _pairs(self, samples: Iterator[dict], counter: SkipCounter) -> Iterator[Pair]:
        for sample in samples:
            try:
                pair = decode_pair(sample, self.transform, self.max_pixels)
            except SampleSkipped as skip:
                counter.skip(skip.kind, f"{sample.get('__url__')}:{sample.get('__key__')}",
                             skip.detail)
                continue
            counter.good()
            yield pair
