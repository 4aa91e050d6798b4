"""A test callback that records, per rank and step, what training did: the loss, whether the
LM and the vision side were in train mode, the sample keys of the batch; and that can make one
rank's loss NaN at a chosen step, or kill the process in the middle of writing the checkpoint
of a chosen step (torch.save writes half its bytes, then the process gets SIGKILL)."""

from __future__ import annotations

import io
import json
import math
import os
import signal
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback


class Probe(Callback):
    def __init__(self, out: str, nan_at_step: int = -1, nan_rank: int = 1,
                 kill_in_save_at_step: int = -1):
        self.out = Path(out)
        self.nan_at_step = nan_at_step
        self.nan_rank = nan_rank
        self.kill_in_save_at_step = kill_in_save_at_step

    def on_train_start(self, trainer, pl_module):
        if trainer.is_global_zero and trainer.global_step == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            torch.save(pl_module.model.trainable_state_dict(), self.out / "initial.pt")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        model = pl_module.model
        self._modes = {"lm_training": model.lm.training, "vision_training": model.vision.training}
        if trainer.global_step == self.nan_at_step and trainer.global_rank == self.nan_rank:
            forward = type(model).forward

            def nan_forward(prompts):
                del model.forward          # one call only
                out = forward(model, prompts)
                out.loss = out.loss * math.nan
                return out

            model.forward = nan_forward

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = float(outputs["loss"])
        record = {"rank": trainer.global_rank, "step": trainer.global_step, "loss": loss,
                  "keys": batch.keys, "skipped_steps": pl_module.guard.skipped_steps,
                  "lr": trainer.optimizers[0].param_groups[0]["lr"],
                  **self._modes}
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / f"rank{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if trainer.global_step == self.kill_in_save_at_step:
            torch.save = _half_write_then_die        # checkpoint callbacks save after this hook


def _half_write_then_die(obj, f, *args, **kwargs):
    buffer = io.BytesIO()
    _torch_save(obj, buffer)
    f.write(buffer.getvalue()[: buffer.tell() // 2])
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)


_torch_save = torch.save


def read(out: Path, rank: int = 0) -> list[dict]:
    return [json.loads(line) for line in (Path(out) / f"rank{rank}.jsonl").read_text().splitlines()]
