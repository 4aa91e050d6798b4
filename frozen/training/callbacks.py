"""Callbacks of a training run: where checkpoints go, the inference folder, throughput.

    RunCheckpoint     ModelCheckpoint keeping last.ckpt in {default_root_dir}/checkpoints, a hard
                      link to the step's checkpoint when one was written at the same step
    ExportInference   writes a FrozenModel.from_pretrained folder at the end of fit (and every
                      N steps when asked; any checkpoint converts with frozen.training.export)
    Throughput        image-caption pairs per second and MFU (frozen.training.mfu), on the
                      progress bar
    CpuThreads        torch threads that fit the cores beside the data workers (CPU runs)
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from frozen.atomic import replacing
from frozen.threads import set_cpu_threads

from .export import save_inference_folder
from .mfu import StepFlops, mfu, peak_bf16_flops

class RunCheckpoint(ModelCheckpoint):
    """ModelCheckpoint with run-stable defaults: one folder per run, last.ckpt always kept.

    Lightning's default folder changes with each logger version, so a resumed run would not
    find the previous last.ckpt; here it is {trainer.default_root_dir}/checkpoints unless
    `dirpath` is given. `--ckpt_path last` also considers SLURM's preemption checkpoints
    (hpc_ckpt_N.ckpt in default_root_dir) and resumes from the newest of all. Temporary files
    of writes cut short by a kill are removed at setup.

    last.ckpt is never a second copy: when a checkpoint of the same step was just written it is
    a hard link to that file (one inode, two names). Lightning's own `save_last="link"` makes a
    symbolic link to the newest checkpoint written, which with a monitored top-k may be an older
    step's, or one deleted later; a hard link is always this step's state and outlives the other
    name. Where hard links are not possible (remote storage) last.ckpt is written in full.
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

    def _save_checkpoint(self, trainer: "pl.Trainer", filepath: str) -> None:
        same_step = (self._last_checkpoint_saved and filepath == self.last_model_path
                     and self._last_global_step_saved == trainer.global_step)
        if not (same_step and self._hard_link(trainer, self._last_checkpoint_saved, filepath)):
            return super()._save_checkpoint(trainer, filepath)
        self._last_checkpoint_saved = filepath

    @staticmethod
    def _hard_link(trainer: "pl.Trainer", target: str, path: str) -> bool:
        """Atomically make `path` a hard link to `target` (rank 0); False where impossible."""
        linked = False
        if trainer.is_global_zero and _is_local_file_protocol(path) and os.path.isfile(target):
            try:
                with replacing(path) as tmp:
                    os.link(target, tmp)
                linked = True
            except OSError:
                pass
        return trainer.strategy.broadcast(linked)

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
    """Image-caption pairs per second over all ranks (smoothed), on the progress bar, and next
    to it the model FLOPs utilisation of this rank's device where its peak is known (GPUs)."""

    def __init__(self, smoothing: float = 0.9):
        self.smoothing = smoothing
        self._last: float | None = None
        self._rate: float | None = None
        self._mfu: float | None = None
        self._flops: StepFlops | None = None
        self._peak: float | None = None

    def setup(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        # Before the model is sharded or wrapped: its tower is counted on a meta-device copy.
        self._peak = peak_bf16_flops(trainer.strategy.root_device)
        if self._peak is not None and stage == "fit":
            self._flops = StepFlops.of(pl_module.model,
                                       getattr(pl_module, "activation_checkpointing", False))

    def _smooth(self, old: float | None, new: float) -> float:
        return new if old is None else self.smoothing * old + (1 - self.smoothing) * new

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._last is not None:
            seconds = max(now - self._last, 1e-9)
            size = batch.prompts.input_ids.shape[0]
            self._rate = self._smooth(self._rate, batch.num_pairs * trainer.world_size / seconds)
            pl_module.log("train/pairs_per_s", self._rate, prog_bar=True, batch_size=size)
            if self._flops is not None:
                prompts = batch.prompts
                images = 0 if prompts.pixel_values is None else prompts.pixel_values.shape[0]
                flops = self._flops(int(prompts.attention_mask.sum()), images)
                self._mfu = self._smooth(self._mfu, mfu(flops, seconds, self._peak))
                pl_module.log("train/mfu", self._mfu, prog_bar=True, batch_size=size)
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
