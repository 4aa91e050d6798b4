"""Per-step health checks that every rank decides identically.

One all-reduce per step carries [non-finite loss flag, good pairs, skips per kind] from every
rank. With the summed result each rank then takes the same decision: skip the update when any
rank's loss is NaN or infinite (and stop with a clear error after too many in a row), and stop
when most samples seen so far were bad. No rank can diverge silently or wait on the others.

A skipped step still runs backward everywhere (DDP and FSDP need every rank in the gradient
reduction); its gradients are then dropped before the optimizer sees them, for the whole
accumulation window it falls in.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch

from frozen.data.skips import SkipTally

log = logging.getLogger("frozen.training")


class NonFiniteLoss(RuntimeError):
    """The loss was NaN or infinite on some rank for too many steps in a row."""


class StepGuard:
    """Run-wide data tally and non-finite-loss policy; see the module docstring.

    max_nonfinite_steps: consecutive steps with a non-finite loss that are skipped before
        stopping (0: stop at the first).
    max_bad_fraction / bad_check_after: stop when more than this fraction of the samples seen
        was bad, checked once at least `bad_check_after` samples were seen.
    """

    def __init__(self, max_nonfinite_steps: int = 10, max_bad_fraction: float = 0.5,
                 bad_check_after: int = 1000):
        self.max_nonfinite_steps = max_nonfinite_steps
        self.max_bad_fraction = max_bad_fraction
        self.bad_check_after = bad_check_after
        self.tally = SkipTally()
        self.skipped_steps = 0
        self._in_a_row = 0
        self._skip_update = False

    def step(self, loss: torch.Tensor, tally: torch.Tensor,
             reduce_sum: Callable[[torch.Tensor], torch.Tensor], step: int) -> bool:
        """Account one step; True when its loss is finite on every rank (train on it)."""
        local = torch.cat([(~torch.isfinite(loss.detach())).double().view(1),
                           tally.to(loss.device, torch.float64)])
        total = reduce_sum(local).cpu()
        self.tally.add(total[1:].round().long())
        self.tally.check(self.max_bad_fraction, self.bad_check_after)
        if total[0] == 0:
            self._in_a_row = 0
            return True
        self.skipped_steps += 1
        self._in_a_row += 1
        self._skip_update = True
        log.warning("step %d: non-finite loss on %d rank(s); update skipped on every rank "
                    "(%d in a row, %d in all)", step, int(total[0]), self._in_a_row,
                    self.skipped_steps)
        if self._in_a_row > self.max_nonfinite_steps:
            raise NonFiniteLoss(f"the loss was NaN or infinite for {self._in_a_row} steps in a "
                                f"row (limit {self.max_nonfinite_steps}) at step {step}: training "
                                "diverged; lower the learning rate or check the data")
        return False

    def take_skip(self) -> bool:
        """True once after a non-finite step: drop the coming optimizer update."""
        skip, self._skip_update = self._skip_update, False
        return skip

    def state_dict(self) -> dict:
        return {"tally": self.tally.state_dict(), "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: dict) -> None:
        self.tally.load_state_dict(state["tally"])
        self.skipped_steps = int(state["skipped_steps"])
