"""Training the vision side of a Frozen model with Lightning (imported only by train.py).

    module          FrozenTraining, the LightningModule (optimizer, steps, checkpoint content)
    datamodule      CaptionData, the LightningDataModule over image-caption shards
    health          per-step NaN / bad-data decisions taken identically on every rank
    blocks          the LM's decoder blocks: activation checkpointing, compile
    fsdp            FrozenFSDPStrategy: FSDP2 over the frozen LM's blocks (`frozen_fsdp`)
    checkpoint_io   AtomicCheckpointIO: checkpoint files never half-written
    interrupt       InterruptCheckpoint: Ctrl-C / SIGTERM save last.ckpt before the run ends
    cli             train.py's LightningCLI, with one-line errors
    callbacks       RunCheckpoint, ExportInference, Throughput, CpuThreads
    export          inference folders from a run or from any checkpoint
    schedule        warmup + cosine learning-rate factor
"""

from __future__ import annotations

from typing import Any

from .callbacks import CpuThreads, ExportInference, RunCheckpoint, Throughput
from .checkpoint_io import AtomicCheckpointIO
from .datamodule import CaptionData
from .export import export_checkpoint
from .fsdp import FrozenFSDPStrategy
from .interrupt import InterruptCheckpoint
from .module import FrozenTraining


def trainer_defaults() -> dict[str, Any]:
    """What `train.py` gives the Trainer unless a config says otherwise (the callbacks listed
    here are always added; RunCheckpoint and ExportInference are configured in their own
    `checkpoint:` and `export:` sections)."""
    return {
        "callbacks": [Throughput(), CpuThreads(), InterruptCheckpoint()],
        "plugins": [{"class_path": "frozen.training.AtomicCheckpointIO"}],
        "gradient_clip_val": 1.0,
        "max_steps": 10_000,
    }


__all__ = ["AtomicCheckpointIO", "CaptionData", "CpuThreads", "ExportInference",
           "FrozenFSDPStrategy", "FrozenTraining", "InterruptCheckpoint", "RunCheckpoint",
           "Throughput", "export_checkpoint", "trainer_defaults"]
