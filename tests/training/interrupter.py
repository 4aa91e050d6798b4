"""A callback that signals its own process at a given step, as a user's Ctrl-C or a
scheduler's SIGTERM would (importable by class path from train.py arguments)."""

from __future__ import annotations

import os
import signal

from lightning.pytorch.callbacks import Callback


class SignalAtStep(Callback):
    def __init__(self, step: int = 3, signal_name: str = "SIGINT"):
        self.step = step
        self.signum = getattr(signal, signal_name)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:              # arrives inside the step
            os.kill(os.getpid(), self.signum)
