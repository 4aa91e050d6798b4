"""Callbacks of a training run: where checkpoints go, the inference folder, throughput.

    RunCheckpoint     ModelCheckpoint keeping last.ckpt in {default_root_dir}/checkpoints
    ExportInference   writes a FrozenModel.from_pretrained folder at the end of fit (and every
                      N steps when asked; any checkpoint converts with frozen.training.export)
    Throughput        image-caption pairs per second, on the progress bar
    CpuThreads        torch threads that fit the cores beside the data workers (CPU runs)
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from frozen.threads import set_cpu_threads

from .export import save_inference_folder

class RunCheckpoint(ModelCheckpoint):
    """ModelCheckpoint with run-stable defaults: one folder per run, last.ckpt always kept.

    Lightning's default folder changes with each logger version, so a resumed run would not
    find the previous last.ckpt; here it is {trainer.default_root_dir}/checkpoints unless
    `dirpath` is given. `--ckpt_path last` also considers SLURM's preemption checkpoints
    (hpc_ckpt_N.ckpt in default_root_dir) and resumes from the newest of all. Temporary files
    of writes cut short by a kill are removed at setup.
    """

    def __init__(self, dirpath: str | None = None, save_last: bool = True,
                 every_n_train_steps: int | None = 1000, save_top_k: int = 1, **kwargs: Any):
        super().__init__(dirpath=dirpath, save_last=save_last,
                         every_n_train_steps=every_n_train_steps, save_top_k=save_top_k, **kwargs)

    def _resolve_dir(self, trainer: "pl.Trainer") -> None:
        if self.dirpath is None:
            self.dirpath = os.path.realpath(os.path.join(trainer.default_root_dir, "checkpoints"))

    def setup(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        self._resolve_dir(trainer)
        if trainer.is_global_zero and os.path.isdir(self.dirpath):
            for stale in Path(self.dirpath).glob(".*.ckpt.tmp-*"):   # writes cut by a kill
                stale.unlink(missing_ok=True)
        super().setup(trainer, pl_module, stage)

    def _find_last_checkpoints(self, trainer: "pl.Trainer") -> set[str]:
        self._resolve_dir(trainer)
        found = super()._find_last_checkpoints(trainer)
        root = Path(trainer.default_root_dir)
        if root.is_dir():
            found |= {os.path.normpath(p) for p in root.glob("hpc_ckpt_*.ckpt")}
        return found


class ExportInference(Callback):
    """Write an inference folder (FrozenModel.from_pretrained) next to the checkpoints.

    At the end of fit, and every `every_n_train_steps` steps when set. The folder is
    `dirpath`, default {checkpoint folder}/../inference.
    """

    def __init__(self, dirpath: str | None = None, every_n_train_steps: int | None = None):
        self.dirpath = dirpath
        self.every_n_train_steps = every_n_train_steps
        self._exported_step = -1

    def folder(self, trainer: "pl.Trainer") -> Path:
        if self.dirpath:
            return Path(self.dirpath)
        ckpt = trainer.checkpoint_callback
        base = Path(ckpt.dirpath).parent if ckpt is not None and ckpt.dirpath else \
            Path(trainer.default_root_dir)
        return base / "inference"

    def export(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> Path:
        """Write the folder now (call on every rank: sharded strategies gather first)."""
        gather = getattr(trainer.strategy, "trainable_state_dict", None)
        state = gather() if gather is not None else None
        folder = self.folder(trainer)
        if trainer.is_global_zero:
            save_inference_folder(pl_module.model, folder, state)
            rank_zero_info(f"inference folder written: {folder} (step {trainer.global_step})")
        trainer.strategy.barrier("export_inference")
        return folder

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n, step = self.every_n_train_steps, trainer.global_step
        if n and step > 0 and step % n == 0 and step != self._exported_step:
            self._exported_step = step   # once per step, also under gradient accumulation
            self.export(trainer, pl_module)

    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self.export(trainer, pl_module)


class Throughput(Callback):
    """Image-caption pairs per second over all ranks (smoothed), on the progress bar."""

    def __init__(self, smoothing: float = 0.9):
        self.smoothing = smoothing
        self._last: float | None = None
        self._rate: float | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._last is not None:
            rate = batch.num_pairs * trainer.world_size / max(now - self._last, 1e-9)
            s = self.smoothing
            self._rate = rate if self._rate is None else s * self._rate + (1 - s) * rate
            pl_module.log("train/pairs_per_s", self._rate, prog_bar=True,
                          batch_size=batch.prompts.input_ids.shape[0])
        self._last = now


class CpuThreads(Callback):
    """On CPU, run as many torch threads as the cores left by this run's other processes and
    data workers allow (frozen.threads): oversubscribed cores slow every step many times over
    once another process is busy. An OMP_NUM_THREADS given by the user wins."""

    def setup(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        if trainer.strategy.root_device.type != "cpu":
            return
        hparams = getattr(trainer.datamodule, "hparams", None) or {}
        workers = int(hparams.get("num_workers", 0) or 0)
        threads = set_cpu_threads(data_workers=workers, processes=trainer.num_devices)
        rank_zero_info(f"CPU threads: {threads} per process ({trainer.num_devices} process(es), "
                       f"{workers} data worker(s) each)")
