"""Learning-rate schedule: linear warmup, then cosine decay to a floor (a LambdaLR factor).

A callable object rather than a closure, so LambdaLR saves and restores it with the checkpoint.
"""

from __future__ import annotations

import math


class WarmupCosine:
    """factor(step): 0 -> 1 over `warmup` steps, then cosine from 1 to `floor` at `total`."""

    def __init__(self, warmup: int, total: int, floor: float = 0.1):
        if total < 1:
            raise ValueError(f"schedule length must be >= 1 step, got {total}")
        self.warmup = max(0, min(warmup, total))
        self.total = total
        self.floor = floor

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
