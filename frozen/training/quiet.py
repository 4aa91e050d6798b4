"""Known benign messages of a training run, filtered by exact message and emitting module.

Each one is printed on every run, says nothing the user can act on, and hides the messages
that matter:
- Lightning's "Found N module(s) in eval mode" warning: the frozen LM stays in eval mode on
  purpose (frozen.model keeps it there; dropout must stay off while the vision side trains).
- Lightning's "`IterableDataset` has `__len__` defined" warning: the caption stream's length
  is exact per rank and worker (it is split before batching), which is what the warning asks.
- Lightning's "Total length of `list` across ranks is zero": a run without validation shards
  has no validation loader (an empty list), on purpose.
- Lightning's `LeafSpec` deprecation warning from its own pytree helper under current torch.
- Lightning's tips to install its cloud logging packages (litlogger, litmodels).
"""

from __future__ import annotations

import logging
import warnings

BENIGN_WARNINGS = (
    (r"Found \d+ module\(s\) in eval mode at the start of training", "lightning.pytorch.loops.fit_loop"),
    (r"Your `IterableDataset` has `__len__` defined", "lightning.pytorch.utilities.data"),
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", "lightning.pytorch.utilities._pytree"),
    (r"Total length of `list` across ranks is zero", "lightning.pytorch.utilities.data"),
)
TIP_PREFIX = "\N{ELECTRIC LIGHT BULB} Tip:"


class _NoTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TIP_PREFIX)


def silence_known_messages() -> None:
    """Install the filters above (idempotent)."""
    for message, module in BENIGN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, module=module)
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _NoTips) for f in logger.filters):
        logger.addFilter(_NoTips())
