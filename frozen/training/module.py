"""FrozenTraining: the LightningModule around a FrozenModel.

It owns what Lightning needs and nothing else: the optimizer and schedule (Frozen's recipe by
default: Adam b1 0.9, b2 0.95, lr 3e-4, warmup then cosine), the training step, validation
perplexity on captions, and checkpoints that hold only the trainable weights. The model itself
(and the frozen LM staying in eval mode) lives in `frozen.model`.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info

from frozen.config import FrozenConfig
from frozen.data.skips import TALLY_SIZE, SkipTally
from frozen.data.stream import TrainBatch
from frozen.model import FrozenModel

from .blocks import checkpoint_blocks, compile_blocks
from .export import STATE_PREFIX
from .health import StepGuard
from .schedule import WarmupCosine


class FrozenTraining(pl.LightningModule):
    """Trains the vision side of a Frozen model through its frozen LM.

    frozen: what to build (FrozenConfig; lm, vision tower, n prefix tokens, dtype, ...).
    lr, betas, eps, weight_decay: the optimizer (AdamW; weight_decay 0 is Frozen's Adam).
    warmup_steps, min_lr_ratio: linear warmup, then cosine decay to lr * min_lr_ratio at
        `schedule_steps` (default: the trainer's max_steps, or its estimate of the total).
    activation_checkpointing: recompute the LM's decoder blocks in backward (non-reentrant).
    compile: torch.compile each LM decoder block and the vision tower.
    max_nonfinite_steps, max_bad_fraction, bad_check_after: see frozen.training.health.
    """

    def __init__(self, frozen: FrozenConfig, lr: float = 3e-4, betas: tuple[float, float] = (0.9, 0.95),
                 eps: float = 1e-8, weight_decay: float = 0.0, warmup_steps: int = 1000,
                 min_lr_ratio: float = 0.1, schedule_steps: int | None = None,
                 activation_checkpointing: bool = False, compile: bool = False,
                 max_nonfinite_steps: int = 10, max_bad_fraction: float = 0.5,
                 bad_check_after: int = 1000):
        super().__init__()
        config = FrozenConfig.from_dict(frozen) if isinstance(frozen, dict) else frozen
        # Plain data only, so checkpoints load with torch.load(weights_only=True).
        self.save_hyperparameters({"frozen": config.to_dict(), "lr": lr, "betas": list(betas),
                                   "eps": eps, "weight_decay": weight_decay,
                                   "warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio,
                                   "schedule_steps": schedule_steps,
                                   "activation_checkpointing": activation_checkpointing,
                                   "compile": compile})
        self.model = FrozenModel(config)
        if self.model.vision is None:
            raise ValueError("FrozenTraining trains the vision side: FrozenConfig.vision is None")
        self.activation_checkpointing = activation_checkpointing
        self.compile_modules = compile
        self.guard = StepGuard(max_nonfinite_steps, max_bad_fraction, bad_check_after)
        self.trainable_keys = {STATE_PREFIX + k for k in self.model.trainable_state_dict()}
        self.strict_loading = False   # checkpoints hold the trainable weights only
        self._configured = False
        self._schedule_total = 1        # steps of the run, set with the schedule
        self._val_sums = torch.zeros(2, dtype=torch.float64)
        self._val_counts = torch.zeros(TALLY_SIZE, dtype=torch.long)
        self.val_tally = SkipTally()    # the last validation pass's pairs and skips, all ranks

    # ----- model setup ---------------------------------------------------------------------

    def configure_model(self) -> None:
        """Per-block checkpointing / compile, once (sharding strategies shard after this)."""
        if self._configured:
            return
        self._configured = True
        lm, traits = self.model.lm, self.model.lm_traits
        if self.activation_checkpointing:
            rank_zero_info(f"activation checkpointing on {checkpoint_blocks(lm, traits)} LM blocks")
        if self.compile_modules:
            rank_zero_info(f"compiled {compile_blocks(lm, traits, self.model.vision)} modules")

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        hp = self.hparams
        optimizer = torch.optim.AdamW(params, lr=hp.lr, betas=tuple(hp.betas), eps=hp.eps,
                                      weight_decay=hp.weight_decay)
        total = self._schedule_total = self._total_steps()
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, WarmupCosine(hp.warmup_steps, total, hp.min_lr_ratio))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def _total_steps(self) -> int:
        hp = self.hparams
        return max(1, hp.schedule_steps or (self.trainer.max_steps if self.trainer.max_steps > 0
                                            else int(self.trainer.estimated_stepping_batches)))

    # ----- steps ---------------------------------------------------------------------------

    def training_step(self, batch: TrainBatch, batch_idx: int) -> torch.Tensor:
        self.model.prefix_head.on_train_progress(self.global_step / self._schedule_total)
        loss = self.model(batch.prompts).loss
        if self.guard.step(loss, batch.tally, self._reduce_sum, self.global_step):
            size = batch.prompts.input_ids.shape[0]
            self.log("train/loss", loss, prog_bar=True, batch_size=size)
            self.log("data/skipped", float(self.guard.tally.skipped), prog_bar=True, batch_size=size)
            for kind, count in self.guard.tally.counts().items():   # exact, summed over ranks
                if count:
                    self.log(f"skipped/{kind}", float(count), prog_bar=True, batch_size=size)
            self.log("train/lr", self.lr_schedulers().get_last_lr()[0], batch_size=size)
        return loss      # backward runs on every rank alike; a non-finite step's update is dropped

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.guard.take_skip():
            optimizer.zero_grad(set_to_none=True)        # the optimizer skips params without grad

    def validation_step(self, batch: TrainBatch, batch_idx: int) -> None:
        out = self.model(batch.prompts)
        tokens = out.num_target_tokens.double()
        self._val_sums += torch.stack([out.loss.detach().double() * tokens, tokens]).cpu()
        self._val_counts += batch.tally.cpu()

    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(2, dtype=torch.float64)
        self._val_counts = torch.zeros(TALLY_SIZE, dtype=torch.long)

    def on_validation_epoch_end(self) -> None:
        nll, tokens = self._reduce_sum(self._val_sums.to(self.device)).tolist()
        self.val_tally = SkipTally()
        self.val_tally.add(self._reduce_sum(self._val_counts.to(self.device)))
        if tokens > 0:
            # Identical on every rank already (summed over all of them).
            self.log("val/loss", nll / tokens, sync_dist=False)
            self.log("val/ppl", math.exp(min(nll / tokens, 50.0)), prog_bar=True, sync_dist=False)

    def _reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.trainer.strategy.reduce(tensor, reduce_op="sum")

    def on_train_end(self) -> None:
        rank_zero_info(f"data: {self.guard.tally.summary()}; {self.guard.skipped_steps} steps "
                       "skipped for a non-finite loss")
        if self.val_tally.good or self.val_tally.skipped:
            rank_zero_info(f"validation data (last pass): {self.val_tally.summary()}")

    # ----- checkpoints: trainable weights, optimizer and loop state; never the LM ----------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["state_dict"]
        if not state and not self.trainer.is_global_zero:
            return          # sharded strategies gather the weights on rank 0 only
        missing = self.trainable_keys - set(state)
        if missing:
            raise RuntimeError(f"trainable weights missing from the checkpoint: {sorted(missing)[:5]}")
        checkpoint["state_dict"] = {k: state[k] for k in self.trainable_keys}
        checkpoint["frozen_guard"] = self.guard.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "state_dict" in checkpoint:  # FSDP loads and removes the weights before this hook
            self.check_trainable_keys(set(checkpoint["state_dict"]))
        if "frozen_guard" in checkpoint:
            self.guard.load_state_dict(checkpoint["frozen_guard"])

    def check_trainable_keys(self, found: set[str]) -> None:
        missing, unexpected = self.trainable_keys - found, found - self.trainable_keys
        if missing or unexpected:
            raise ValueError(f"checkpoint does not match this model's trainable weights: missing "
                             f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
