"""What is done per decoder block of the frozen LM: non-reentrant activation checkpointing and
in-place torch.compile.

The block classes come from the LM's traits (`frozen.lm.LMTraits.block_types`: the classes the
model names in `_no_split_modules`, LlamaDecoderLayer, MistralDecoderLayer, GPTJBlock, ...).
Checkpointing is applied with torch's checkpoint wrapper rather than the model's
`gradient_checkpointing_enable`: Hugging Face layers checkpoint only in train mode, and the
frozen LM always runs in eval mode, so that switch would silently do nothing.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from ..lm import LMTraits


def block_types(lm: nn.Module, traits: LMTraits) -> tuple[type[nn.Module], ...]:
    """The LM's decoder block classes; raises if none were found at load."""
    if not traits.block_types:
        raise ValueError(f"cannot find the decoder blocks of {type(lm).__name__}: it names no "
                         "_no_split_modules and has no GradientCheckpointingLayer")
    return traits.block_types


def checkpoint_blocks(lm: nn.Module, traits: LMTraits) -> int:
    """Wrap every decoder block in non-reentrant activation checkpointing; returns the count."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl, CheckpointWrapper, apply_activation_checkpointing, checkpoint_wrapper)

    if any(isinstance(m, CheckpointWrapper) for m in lm.modules()):
        return 0
    blocks = block_types(lm, traits)
    apply_activation_checkpointing(
        lm, checkpoint_wrapper_fn=partial(checkpoint_wrapper, checkpoint_impl=CheckpointImpl.NO_REENTRANT),
        check_fn=lambda m: isinstance(m, blocks))
    return sum(isinstance(m, CheckpointWrapper) for m in lm.modules())


def compile_blocks(lm: nn.Module, traits: LMTraits, *extra: nn.Module | None) -> int:
    """torch.compile each decoder block (and each extra module) in place, keeping names."""
    blocks = block_types(lm, traits)
    targets = [m for m in lm.modules() if isinstance(m, blocks)] + [m for m in extra if m is not None]
    for module in targets:
        module.compile()
    return len(targets)
