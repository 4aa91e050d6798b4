"""A test callback that records, per rank and step, what training did: the loss, whether the
LM and the vision side were in train mode, the sample keys of the batch; the trainable weights
and optimizer state a resumed run starts from (resumed.pt), and at the end the LM's full weights
(lm.pt); and that can make one rank's loss NaN at a chosen step, kill the process
in the middle of writing the checkpoint of a chosen step (torch.save writes half its bytes, then
the process gets SIGKILL), or kill every rank of the run after a chosen step (SIGKILL to the
process group, as when a node dies)."""

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
                 kill_in_save_at_step: int = -1, kill_all_at_step: int = -1):
        self.out = Path(out)
        self.nan_at_step = nan_at_step
        self.nan_rank = nan_rank
        self.kill_in_save_at_step = kill_in_save_at_step
        self.kill_all_at_step = kill_all_at_step

    def on_train_start(self, trainer, pl_module):
        self.out.mkdir(parents=True, exist_ok=True)
        if trainer.is_global_zero and trainer.global_step == 0:
            torch.save(pl_module.model.trainable_state_dict(), self.out / "initial.pt")
        if trainer.global_step > 0:     # resumed: what the strategy restored (resumed.pt)
            strategy = trainer.strategy
            state = {"state_dict": strategy.lightning_module_state_dict(),
                     "optimizer": strategy.optimizer_state(trainer.optimizers[0])}
            if trainer.is_global_zero:
                torch.save(state, self.out / "resumed.pt")

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
        if trainer.global_step == self.kill_all_at_step:
            trainer.strategy.barrier("probe_kill")      # every rank has recorded this step
            if trainer.is_global_zero:
                os.killpg(os.getpgid(0), signal.SIGKILL)

    def on_train_end(self, trainer, pl_module):
        """The LM's weights in full (gathered from shards under FSDP), on every rank's call."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(pl_module.model.lm, options=StateDictOptions(
            full_state_dict=True, cpu_offload=True))
        if trainer.is_global_zero:
            torch.save(state, self.out / "lm.pt")


def _half_write_then_die(obj, f, *args, **kwargs):
    buffer = io.BytesIO()
    _torch_save(obj, buffer)
    f.write(buffer.getvalue()[: buffer.tell() // 2])
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)


_torch_save = torch.save


def read(out: Path, rank: int = 0) -> list[dict]:
    return [json.loads(line) for line in (Path(out) / f"rank{rank}.jsonl").read_text().splitlines()]
