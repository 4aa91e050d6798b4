"""FrozenFSDPStrategy: FSDP that shards the frozen LM block by block, apart from the vision side.

Units, found from the model rather than configured: each LM decoder block (the class the LM
names in `_no_split_modules`), the rest of the LM (embeddings, final norm, head), the vision
tower and the prefix head. No unit mixes frozen and trainable weights, so gradients and
optimizer state exist only for the vision side, and each unit keeps one dtype (a bf16 LM next
to an fp32 tower). Activation checkpointing, when the module asks for it, is applied per block
after wrapping (non-reentrant). Checkpoints gather only the trainable units.

    trainer:
      strategy:
        class_path: frozen.training.fsdp.FrozenFSDPStrategy
        init_args: {sharding_strategy: FULL_SHARD}
"""

from __future__ import annotations

from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any, Callable

from lightning.pytorch.strategies import FSDPStrategy
from torch import nn

from .blocks import decoder_block_types
from .export import STATE_PREFIX


class FrozenFSDPStrategy(FSDPStrategy):
    strategy_name = "frozen_fsdp"
    wraps_blocks = True     # tells FrozenTraining that checkpointing is applied here

    def __init__(self, auto_wrap_policy: None = None, activation_checkpointing_policy: None = None,
                 **kwargs: Any):
        if auto_wrap_policy is not None or activation_checkpointing_policy is not None:
            raise ValueError("FrozenFSDPStrategy derives wrapping and checkpointing from the model; "
                             "use lightning's FSDPStrategy to set them by hand")
        kwargs.setdefault("use_orig_params", True)
        kwargs.setdefault("state_dict_type", "full")
        super().__init__(**kwargs)

    def _setup_model(self, model: nn.Module) -> nn.Module:
        from torch.distributed.fsdp.wrap import lambda_auto_wrap_policy

        frozen = model.model
        blocks = decoder_block_types(frozen.lm)
        self.kwargs["auto_wrap_policy"] = partial(lambda_auto_wrap_policy,
                                                  lambda_fn=unit_roots(frozen))
        if getattr(model, "activation_checkpointing", False):
            self._activation_checkpointing_kwargs = {"check_fn": lambda m: isinstance(m, blocks)}
        return super()._setup_model(model)

    def trainable_state_dict(self) -> dict[str, Any]:
        """Full trainable weights on rank 0 ({} elsewhere); call on every rank."""
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp._common_utils import clean_tensor_name

        module = self.lightning_module
        frozen = module.model
        wanted = {k[len(STATE_PREFIX):] for k in module.trainable_keys}
        units = [u for u in (frozen.vision, frozen.prefix_head) if isinstance(u, FSDP)]
        with ExitStack() as stack:
            for unit in units:
                stack.enter_context(FSDP.summon_full_params(
                    unit, writeback=False, rank0_only=True, offload_to_cpu=True))
            if self.global_rank != 0:
                return {}
            tensors = list(frozen.named_parameters()) + list(frozen.named_buffers())
            return {key: t.detach().cpu().clone() for name, t in tensors
                    if (key := clean_tensor_name(name)) in wanted}

    def load_checkpoint(self, checkpoint_path: Any, weights_only: bool | None = None) -> dict[str, Any]:
        """Check the checkpoint's weights against the model first (FSDP loads them leniently)."""
        import torch

        if Path(checkpoint_path).is_file():     # a full checkpoint (not a sharded folder)
            state = torch.load(checkpoint_path, mmap=True, weights_only=True)["state_dict"]
            self.lightning_module.check_trainable_keys(set(state))
        return super().load_checkpoint(checkpoint_path, weights_only)

    def lightning_module_state_dict(self) -> dict[str, Any]:
        return {STATE_PREFIX + k: v for k, v in self.trainable_state_dict().items()}


def unit_roots(frozen: nn.Module) -> Callable[[nn.Module], bool]:
    """True for the modules that become FSDP units: each LM decoder block, the LM (what is
    left of it: embeddings, final norm, head), the vision tower and the prefix head."""
    blocks = decoder_block_types(frozen.lm)
    roots = {id(m) for m in (frozen.lm, frozen.vision, frozen.prefix_head) if m is not None}
    return lambda m: isinstance(m, blocks) or id(m) in roots
