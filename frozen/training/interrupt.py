"""InterruptCheckpoint: Ctrl-C or SIGTERM ends a run with a checkpoint, not with lost work.

Lightning turns SIGTERM into an exception after the current step, and Ctrl-C into a
KeyboardInterrupt wherever it lands (possibly inside an optimizer step), then exits without
saving. Here Ctrl-C only sets a flag; the run stops after the step in progress, writes
last.ckpt (atomically, through the run's checkpoint I/O) and ends normally, so
`--ckpt_path last` resumes at that step. SIGTERM is saved the same way when Lightning's
exception reaches the callbacks. A second Ctrl-C stops at once, without saving.
"""

from __future__ import annotations

import os
import signal
import threading

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException


class InterruptCheckpoint(Callback):
    """Save last.ckpt when the run is interrupted by Ctrl-C (SIGINT) or SIGTERM."""

    def __init__(self) -> None:
        self.interrupted_at: int | None = None     # the step saved at interruption
        self.saved_path: str | None = None
        self._requested = False
        self._previous_handler = None

    # ----- Ctrl-C -> a flag, checked between steps ---------------------------------------------

    def _on_sigint(self, signum, frame) -> None:
        if self._requested:                          # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._requested = True
        print("\ninterrupt: saving a checkpoint after this step (Ctrl-C again to stop at once)",
              flush=True)

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._restore_handler()

    def _restore_handler(self) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        requested = self._requested
        if trainer.world_size > 1:                   # every rank stops at the same step
            requested = trainer.strategy.reduce_boolean_decision(requested, all=False)
        if requested and self.interrupted_at is None:
            self.save(trainer)
            trainer.should_stop = True

    # ----- SIGTERM (Lightning raises after the step), or a failure after Ctrl-C ---------------

    def on_exception(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule",
                     exception: BaseException) -> None:
        # After a Ctrl-C the data-loader workers (same process group) are gone, so fetching
        # the next batch may fail; the model is then between steps, as after SIGTERM.
        if self.interrupted_at is None and (isinstance(exception, SIGTERMException)
                                            or (self._requested and not isinstance(exception, KeyboardInterrupt))):
            self.save(trainer)
        self._restore_handler()

    def save(self, trainer: "pl.Trainer") -> None:
        """Write last.ckpt the way the run's ModelCheckpoint does (so it keeps tracking that
        file when the run resumes), or plainly into {default_root_dir}/checkpoints."""
        checkpoint = trainer.checkpoint_callback
        if isinstance(checkpoint, ModelCheckpoint) and checkpoint.save_last:
            checkpoint._save_last_checkpoint(trainer, checkpoint._monitor_candidates(trainer))
            path = checkpoint.last_model_path
        else:
            path = os.path.join(trainer.default_root_dir, "checkpoints", "last.ckpt")
            trainer.save_checkpoint(path)
        self.interrupted_at, self.saved_path = trainer.global_step, path
        rank_zero_info(f"interrupted at step {trainer.global_step}: checkpoint saved to {path} "
                       "(resume with --ckpt_path last)")
