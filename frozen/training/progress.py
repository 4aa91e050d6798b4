"""StepProgress: a step counter for step-bounded runs, readable on a terminal and in a log file.

Lightning's bars count batches per epoch and label them `Epoch 0/{max_epochs - 1}`, which reads
`Epoch 0/-2` when a run is bounded by max_steps (max_epochs = -1); and when output goes to a
file its bars print nothing useful. This one counts optimizer steps against max_steps: on a
terminal one line rewritten in place, otherwise a plain line every `every` steps (default:
about 20 lines per run) and at the end.

    step 200/1000  20%  loss 1.234  82 pairs/s  0:40 elapsed  2:40 left
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar

# The progress-bar metrics shown, in this order, with their short labels.
SHOWN = (("train/loss", "loss"), ("train/pairs_per_s", "pairs/s"), ("data/skipped", "skipped"),
         ("val/ppl", "val ppl"))


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class StepProgress(ProgressBar):
    def __init__(self, every: int | None = None, stream: TextIO | None = None):
        super().__init__()
        self.every = every
        self.stream = stream
        self._enabled = True
        self._start = 0.0
        self._first_step = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def out(self) -> TextIO:
        return self.stream or sys.stdout

    def total_steps(self) -> int | None:
        steps = self.trainer.max_steps
        if steps is not None and steps > 0:
            return steps
        estimate = self.trainer.estimated_stepping_batches
        return int(estimate) if math.isfinite(estimate) else None

    def line(self) -> str:
        step, total = self.trainer.global_step, self.total_steps()
        parts = [f"step {step}/{total}  {100 * step / total:3.0f}%" if total else f"step {step}"]
        metrics = self.get_metrics(self.trainer, self.trainer.lightning_module)
        for key, label in SHOWN:
            if key in metrics:
                value = float(metrics[key])
                parts.append(f"{value:.0f} {label}" if label in ("pairs/s", "skipped")
                             else f"{label} {value:.4g}")
        elapsed = time.perf_counter() - self._start
        parts.append(f"{_clock(elapsed)} elapsed")
        done = step - self._first_step
        if total and done > 0:
            parts.append(f"{_clock(elapsed / done * (total - step))} left")
        return "  ".join(parts)

    def get_metrics(self, trainer, pl_module) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics

    def _interactive(self) -> bool:
        return bool(getattr(self.out, "isatty", lambda: False)())

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()
        self._first_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._enabled or not trainer.is_global_zero:
            return
        if self._interactive():
            print("\r" + self.line() + "\033[K", end="", file=self.out, flush=True)
            return
        total = self.total_steps() or 1000
        every = self.every or max(1, total // 20)
        if trainer.global_step % every == 0 or trainer.global_step == total:
            print(self.line(), file=self.out, flush=True)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._enabled and trainer.is_global_zero and not trainer.sanity_checking \
                and "val/ppl" in trainer.progress_bar_metrics:
            prefix = "\n" if self._interactive() else ""
            print(f"{prefix}validation at step {trainer.global_step}: perplexity "
                  f"{float(trainer.progress_bar_metrics['val/ppl']):.4g}", file=self.out, flush=True)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._enabled and trainer.is_global_zero and self._interactive():
            print(file=self.out, flush=True)
