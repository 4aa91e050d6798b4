"""Training on image-caption pairs and interleaved documents together.

    DocumentData    the `data.documents` section of a training config
    DocumentStream  document shards -> batches (CaptionStream with a document decode step)
    MixedStream     one batch per step from either stream, a fixed fraction from documents

OpenFlamingo trains on LAION pairs and MMC4 documents side by side; here each step's batch
comes from one of the two streams, each with its own batch size. Which one is fixed by the
batch's index alone, so every rank and every data-loader worker agrees on it, and exactly
`ratio` of the batches (rounded down, spread evenly) are documents.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from .documents import DocumentPacker, DocumentRules, TokenBudget, decode_document
from .skips import SampleSkipped
from .stream import CaptionStream, TrainBatch, worker_share


@dataclasses.dataclass(kw_only=True)
class DocumentData(DocumentRules):
    """Document shards mixed into training (plus the DocumentRules fields).

    shards: MMC4-layout shards: a path, a brace pattern or a list (as data.train_shards).
    ratio: the fraction of training batches drawn from documents (0 to 1). The epoch keeps the
        number of batches that data.epoch_samples gives; this fraction of them are documents.
    batch_size: documents per batch per rank.
    shuffle_buffer: documents held for shuffling per worker (0: none).
    Validation stays on the pairs (caption perplexity).
    """

    shards: str | list[str]
    ratio: float = 0.5
    batch_size: int = 8
    shuffle_buffer: int = 100

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.ratio <= 1:
            raise ValueError(f"documents.ratio={self.ratio}: expected a fraction from 0 to 1")
        if self.batch_size < 1:
            raise ValueError(f"documents.batch_size={self.batch_size}: expected at least 1")

    def rules(self) -> DocumentRules:
        return DocumentRules(**{f.name: getattr(self, f.name)
                                for f in dataclasses.fields(DocumentRules)})


class DocumentStream(CaptionStream):
    """Batches of documents for one rank: CaptionStream's shard reading, shuffling, batching
    and skip counting, with documents in place of image-caption pairs (one per sequence)."""

    def __init__(self, urls: Sequence[str], transform, collate, batch_size: int, batches: int,
                 rules: DocumentRules, budget: TokenBudget, **kwargs: Any):
        super().__init__(urls, transform, collate, batch_size, batches, packer=DocumentPacker(),
                         **kwargs)
        self.rules = rules
        self.budget = budget

    def _pairs(self, samples: Iterator[dict], counter) -> Iterator:
        """The decode step: raw samples -> Documents (bad images and documents counted)."""
        for sample in samples:
            where = f"{sample.get('__url__')}:{sample.get('__key__')}"
            try:
                document = decode_document(sample, self.transform, self.rules, self.budget,
                                           self.max_pixels)
            except SampleSkipped as skip:
                counter.skip(skip.kind, where, skip.detail)
                continue
            for kind, detail in document.dropped:
                counter.skip(kind, where, f"image dropped from its document: {detail}")
            counter.good()
            yield document


def is_document_batch(index: int, ratio: float) -> bool:
    """Whether batch `index` of an epoch comes from documents: floor(n * ratio) of the first n
    batches do, for every n."""
    return math.floor((index + 1) * ratio) > math.floor(index * ratio)


class MixedStream(torch.utils.data.IterableDataset):
    """`batches` batches per epoch for one rank, `ratio` of them from `documents`.

    Both streams run endlessly inside each worker; the DataLoader takes worker 0's first
    batch, worker 1's first, ..., so worker w's j-th batch is batch j * workers + w.
    """

    def __init__(self, pairs: CaptionStream, documents: DocumentStream, ratio: float,
                 batches: int):
        super().__init__()
        self.pairs, self.documents = endless(pairs), endless(documents)
        self.ratio = ratio
        self.batches = batches

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[TrainBatch]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        pairs, documents = iter(self.pairs), iter(self.documents)
        for j in range(worker_share(self.batches, worker, workers)):
            yield next(documents if is_document_batch(j * workers + worker, self.ratio) else pairs)


def endless(stream: CaptionStream) -> CaptionStream:
    """A copy of the stream that never ends an epoch (the mix decides how many batches)."""
    stream = copy.copy(stream)
    stream.batches = sys.maxsize
    return stream


def mix_documents(pairs: CaptionStream, options: DocumentData, urls: Sequence[str]) -> MixedStream:
    """Pairs from `pairs` (its collate, transform, rank and seeds) mixed with documents from
    `urls`. The epoch keeps `pairs.batches` batches; `options.ratio` of them are documents."""
    documents = DocumentStream(
        urls, pairs.transform, pairs.collate, options.batch_size, sys.maxsize, options.rules(),
        TokenBudget.of_collator(pairs.collate, options.max_tokens),
        resampled=pairs.resampled, shuffle_buffer=options.shuffle_buffer,
        seed=pairs.seed + 1_000_003, rank=pairs.rank, world_size=pairs.world_size,
        start_step=pairs.start_step, max_pixels=pairs.max_pixels,
        log_interval=pairs.log_interval, stall_limit=pairs.stall_limit, name="documents")
    return MixedStream(pairs, documents, options.ratio, pairs.batches)
