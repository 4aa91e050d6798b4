"""The frozen LM's repeated decoder blocks, found from the model itself, and what is done per
block: non-reentrant activation checkpointing and in-place torch.compile.

Blocks are the classes the model names in `_no_split_modules` (LlamaDecoderLayer,
MistralDecoderLayer, GPTJBlock, ...), with transformers' GradientCheckpointingLayer as the
fallback. Checkpointing is applied with torch's checkpoint wrapper rather than the model's
`gradient_checkpointing_enable`: Hugging Face layers checkpoint only in train mode, and the
frozen LM always runs in eval mode, so that switch would silently do nothing.
"""

from __future__ import annotations

from functools import partial

from torch import nn


def decoder_block_types(lm: nn.Module) -> tuple[type[nn.Module], ...]:
    """The LM's decoder block classes; raises if none can be found."""
    names = set(getattr(lm, "_no_split_modules", None) or [])
    found = {type(m) for m in lm.modules() if type(m).__name__ in names}
    if not found:
        from transformers.modeling_layers import GradientCheckpointingLayer

        found = {type(m) for m in lm.modules() if isinstance(m, GradientCheckpointingLayer)}
    if not found:
        raise ValueError(f"cannot find the decoder blocks of {type(lm).__name__}: it names no "
                         "_no_split_modules and has no GradientCheckpointingLayer")
    return tuple(sorted(found, key=lambda t: t.__name__))


def checkpoint_blocks(lm: nn.Module) -> int:
    """Wrap every decoder block in non-reentrant activation checkpointing; returns the count."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl, CheckpointWrapper, apply_activation_checkpointing, checkpoint_wrapper)

    if any(isinstance(m, CheckpointWrapper) for m in lm.modules()):
        return 0
    blocks = decoder_block_types(lm)
    apply_activation_checkpointing(
        lm, checkpoint_wrapper_fn=partial(checkpoint_wrapper, checkpoint_impl=CheckpointImpl.NO_REENTRANT),
        check_fn=lambda m: isinstance(m, blocks))
    return sum(isinstance(m, CheckpointWrapper) for m in lm.modules())


def compile_blocks(lm: nn.Module, *extra: nn.Module | None) -> int:
    """torch.compile each decoder block (and each extra module) in place, keeping names."""
    blocks = decoder_block_types(lm)
    targets = [m for m in lm.modules() if isinstance(m, blocks)] + [m for m in extra if m is not None]
    for module in targets:
        module.compile()
    return len(targets)
