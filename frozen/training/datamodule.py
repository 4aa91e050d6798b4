"""CaptionData: the LightningDataModule over image-caption shards (img2dataset layout).

The model's processor (frozen.processor.Processor: tokenizer, prefix slots, window, image
transform) is given at construction; train.py links it from the model it builds. Images are
decoded, padded and resized, and prompts tokenized, inside the data-loader workers.

Data-loader workers start from a forkserver (a clean single-threaded process that has imported
the data pipeline once), not by forking the training process: forking a process that already
runs threads (gloo, tokenizers, OpenMP) can deadlock the child at start, and a rank whose
worker hangs leaves every other rank waiting in a collective. Spawning each worker is as safe
but imports torch and transformers anew every time (seconds per worker). A worker that gives
no batch for `worker_timeout` seconds stops its rank with an error, which ends the run.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os

import lightning.pytorch as pl
import torch

from frozen.data import CaptionStream, Packer, expand_shards
from frozen.data.mixing import DocumentData, mix_documents
from frozen.data.shards import check_shards
from frozen.images import MAX_PIXELS
from frozen.processor import Processor

log = logging.getLogger("frozen.training")


class CaptionData(pl.LightningDataModule):
    """Training (and optional validation) batches from webdataset shards.

    train_shards / val_shards: a path, a folder (every *.tar in it, sorted), a shell glob
        ('cc3m/*.tar'), a brace pattern ('cc3m/{00000..00331}.tar'), any URL webdataset opens
        ('pipe:aws s3 cp s3://b/{0..9}.tar -'), or a list of those.
    batch_size: sequences per rank per step (global batch = batch_size x ranks x accumulation).
    epoch_samples: image-caption pairs per epoch over all ranks; sets a fixed number of batches
        per rank, so uneven or few shards never leave a rank waiting.
    resampled: draw shards with replacement per worker (default) rather than split them
        exactly among ranks and workers.
    shuffle_buffer: raw samples held for shuffling per worker (0: no shuffling).
    pack_pairs / pack_max_tokens: up to this many pairs per training sequence, within this
        many tokens (1 / None: one pair per sequence).
    val_samples: validation pairs over all ranks (exact split, no shuffling, no packing).
    max_image_pixels: larger images are skipped as decompression bombs (PIL's own limit,
        about 89 M pixels, is the most this can allow).
    log_interval: seconds between skip warnings of one worker.
    documents: interleaved-document shards mixed into training (frozen.data.mixing.DocumentData).
    worker_start: how data-loader workers start: "forkserver" (default), "spawn", or "fork"
        (fastest, but can deadlock in a process that already runs threads).
    worker_timeout: seconds a rank waits for a batch from its workers before stopping with an
        error (0: forever).
    processor: the model's processor (`FrozenModel.processor`); train.py passes it.
    """

    def __init__(self, train_shards: str | list[str], val_shards: str | list[str] | None = None,
                 batch_size: int = 128, epoch_samples: int = 1_000_000, val_samples: int = 5000,
                 val_batch_size: int | None = None, resampled: bool = True,
                 shuffle_buffer: int = 1000, pack_pairs: int = 1, pack_max_tokens: int | None = None,
                 num_workers: int = 4, seed: int = 0, max_image_pixels: int = MAX_PIXELS,
                 log_interval: float = 60.0, worker_start: str = "forkserver",
                 worker_timeout: float = 600.0, documents: DocumentData | dict | None = None,
                 processor: Processor | None = None):
        super().__init__()
        self.save_hyperparameters(ignore=["documents", "processor"])  # plain data only
        self.processor = processor
        if worker_start not in multiprocessing.get_all_start_methods():
            raise ValueError(f"data.worker_start {worker_start!r} is not one of "
                             f"{multiprocessing.get_all_start_methods()} on this system")
        self.documents = DocumentData(**documents) if isinstance(documents, dict) else documents
        self.document_urls = expand_shards(self.documents.shards) if self.documents else None
        self.train_urls = expand_shards(train_shards)
        self.val_urls = expand_shards(val_shards) if val_shards else None

    def prepare_data(self) -> None:
        """No training shard at all: stop before the run writes anything (logs, checkpoints)."""
        check_shards(self.train_urls, "train")

    def setup(self, stage: str) -> None:
        if self.processor is None:
            raise ValueError("CaptionData needs the model's processor: pass "
                             "processor=FrozenModel.processor (train.py links it from the model)")
        for name, urls in (("train", self.train_urls), ("val", self.val_urls or []),
                           ("document", self.document_urls or [])):
            missing = check_shards(urls, name) if urls else []
            if missing:
                log.warning("%d of %d %s shards do not exist and will be skipped (first: %s)",
                            len(missing), len(urls), name, missing[0])
        if self.hparams.num_workers > 0:
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    def _stream(self, urls: list[str], batch_size: int, samples: int, training: bool) -> CaptionStream:
        hp, world, processor = self.hparams, self.trainer.world_size, self.processor
        pairs = hp.pack_pairs if training else 1
        packer = Packer(pairs, hp.pack_max_tokens if training else None,
                        tokenizer=processor.tokenizer, num_prefix_tokens=processor.num_prefix_tokens)
        return CaptionStream(
            urls, dataclasses.replace(processor.image_transform, max_pixels=hp.max_image_pixels),
            processor.collator(), batch_size,
            batches=max(1, samples // (world * batch_size * pairs)), packer=packer,
            resampled=hp.resampled and training, shuffle_buffer=hp.shuffle_buffer if training else 0,
            seed=hp.seed, rank=self.trainer.global_rank, world_size=world,
            start_step=self.trainer.global_step if training else 0, max_pixels=hp.max_image_pixels,
            log_interval=hp.log_interval, name="train" if training else "val")

    def _loader(self, stream: CaptionStream) -> torch.utils.data.DataLoader:
        hp = self.hparams
        workers = {}
        if hp.num_workers > 0:
            workers = {"num_workers": hp.num_workers, "persistent_workers": True,
                       "multiprocessing_context": worker_context(hp.worker_start),
                       "timeout": hp.worker_timeout}
        return torch.utils.data.DataLoader(
            stream, batch_size=None, pin_memory=self.trainer.strategy.root_device.type == "cuda",
            **workers)

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        return batch.to(device)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        hp = self.hparams
        stream = self._stream(self.train_urls, hp.batch_size, hp.epoch_samples, True)
        if self.documents is not None:
            stream = mix_documents(stream, self.documents, self.document_urls)
        return self._loader(stream)

    def val_dataloader(self) -> torch.utils.data.DataLoader | list:
        if not self.val_urls:
            return []
        hp = self.hparams
        return self._loader(self._stream(self.val_urls, hp.val_batch_size or hp.batch_size,
                                         hp.val_samples, False))


def worker_context(method: str):
    """The multiprocessing context data-loader workers start from. The forkserver imports the
    large third-party libraries once per training process, so each worker starts in well
    under a second (the first start pays the imports). The project's own modules are imported
    by each worker, with the training process's sys.path (Python 3.11's forkserver ignores it)."""
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["torch", "numpy", "PIL.Image", "transformers",
                                        "lightning.pytorch"])
    return context
