"""FrozenFSDPStrategy: FSDP2 (`torch.distributed.fsdp.fully_shard`) over the frozen LM, block by
block, apart from the trainable vision side.

Units, found from the model rather than configured: each LM decoder block, the rest of the LM
(final norm, output head), the vision tower and the prefix head; the FrozenModel is the root
and holds no parameters of its own. No unit mixes frozen and trainable weights, so gradients
and optimizer state exist only for the vision side. The LM's input-embedding table stays
replicated on every rank, outside FSDP: the model reads it outside the LM's forward (token
lookup before the image prefixes are spliced in, the vocabulary head's mixtures), where a
sharded table would be a DTensor. It is frozen, so it costs memory (V x D) and no traffic.

With `precision: bf16-mixed` the LM's units gather and compute in bfloat16
(MixedPrecisionPolicy: a float32 LM is sent as bfloat16); the vision side keeps float32 weights
and gradients and runs under Lightning's bf16 autocast, as with DDP (a policy that cast its
weights would give BatchNorm bfloat16 weights beside float32 running statistics, which
batch_norm refuses). Activation checkpointing and
torch.compile of the blocks are applied by FrozenTraining.configure_model before sharding.
Gradient-norm clipping is Lightning's `gradient_clip_val`: the gradients are DTensors that
`torch.nn.utils.clip_grad_norm_` handles across ranks.

Lightning's ModelParallelStrategy gives the process group, device mesh and launcher; this
class adds a 1-D data-parallel mesh over all ranks (no tensor parallelism) and checkpoints that
hold only the trainable weights and optimizer state, gathered in full on rank 0 into one file
(megabytes, like every other strategy's), loaded back on any number of ranks.

    trainer:
      strategy: {class_path: frozen.training.fsdp.FrozenFSDPStrategy}
    python train.py fit ... --trainer.strategy frozen_fsdp          # the same, registered name
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.strategies import ModelParallelStrategy, StrategyRegistry
from torch import nn

from .blocks import block_types
from .export import STATE_PREFIX

FULL_ON_RANK0 = dict(full_state_dict=True, cpu_offload=True)


class FrozenFSDPStrategy(ModelParallelStrategy):
    """reshard_after_forward: free each LM block's gathered weights after its forward (less
    memory, one more all-gather in backward); False keeps them until backward."""

    def __init__(self, reshard_after_forward: bool = True, process_group_backend: str | None = None,
                 **kwargs: Any):
        super().__init__(save_distributed_checkpoint=False,
                         process_group_backend=process_group_backend, **kwargs)
        self.reshard_after_forward = reshard_after_forward

    def setup_environment(self) -> None:
        self._data_parallel_size = self.num_nodes * self.num_processes   # every rank shards
        self._tensor_parallel_size = 1
        super().setup_environment()

    def setup(self, trainer) -> None:
        from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy

        frozen = self.lightning_module.model
        if not isinstance(frozen, FSDPModule):          # once, also when fit is followed by test
            bf16 = self.precision_plugin.precision == "bf16-mixed"
            lm_policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16 if bf16 else None)
            shard_frozen_model(frozen, self.device_mesh["data_parallel"], lm_policy,
                               self.reshard_after_forward)
        # The tower and the linear head return views; FrozenModel never changes them in place
        # (the hazard this warns of), and the sharded-vs-DDP gradient test would show it.
        warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")
        super().setup(trainer)

    # ----- checkpoints: trainable weights and optimizer state, full on rank 0 ----------------

    def lightning_module_state_dict(self) -> dict[str, Any]:
        return {STATE_PREFIX + k: v for k, v in self.trainable_state_dict().items()}

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Full trainable weights and buffers on rank 0 (CPU), {} elsewhere; call on every rank."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        frozen = self.lightning_module.model
        state = {}
        for name, unit in trainable_units(frozen).items():
            part = get_model_state_dict(unit, options=StateDictOptions(**FULL_ON_RANK0))
            state.update({f"{name}.{k}": v for k, v in part.items()})
        return state if self.global_rank == 0 else {}

    def optimizer_state(self, optimizer) -> dict[str, Any]:
        """The optimizer's state in full on rank 0, keyed by parameter name."""
        from torch.distributed.checkpoint.state_dict import (StateDictOptions,
                                                              get_optimizer_state_dict)

        optimizer = getattr(optimizer, "_optimizer", optimizer)   # a LightningOptimizer's own
        return get_optimizer_state_dict(self.lightning_module, optimizer,
                                        options=StateDictOptions(**FULL_ON_RANK0))

    def load_checkpoint(self, checkpoint_path: Any,
                        weights_only: bool | None = None) -> dict[str, Any]:
        """Load a full checkpoint file on every rank; each keeps its own shards."""
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                              set_optimizer_state_dict)

        path = Path(self.broadcast(checkpoint_path))
        if not path.is_file():
            raise FileNotFoundError(f"{str(path)!r} is not a checkpoint file")
        checkpoint = torch.load(path, mmap=True, map_location="cpu", weights_only=weights_only)
        module = self.lightning_module
        state = checkpoint.pop("state_dict")
        module.check_trainable_keys(set(state))
        for name, unit in trainable_units(module.model).items():
            prefix = f"{STATE_PREFIX}{name}."
            set_model_state_dict(unit, {k[len(prefix):]: v for k, v in state.items()
                                        if k.startswith(prefix)},
                                 options=StateDictOptions(full_state_dict=True))
        saved = checkpoint.get("optimizer_states", [])
        if self.optimizers and saved:
            if not all(isinstance(k, str) for k in saved[0].get("state", {})):
                raise ValueError(f"{str(path)!r} was written by another strategy (its optimizer "
                                 "state is keyed by position): resume it with that strategy")
            for optimizer, optimizer_state in zip(self.optimizers, saved):
                set_optimizer_state_dict(module, optimizer, optimizer_state,
                                         options=StateDictOptions(full_state_dict=True))
        return checkpoint


StrategyRegistry.register("frozen_fsdp", FrozenFSDPStrategy,
                          description="FSDP2 over the frozen LM's blocks, apart from the "
                                      "vision side")


def trainable_units(frozen: nn.Module) -> dict[str, nn.Module]:
    """The trainable submodules by name (their names are FrozenModel's trainable prefixes)."""
    return {name: getattr(frozen, name) for name in ("vision", "prefix_head")
            if getattr(frozen, name, None) is not None}


def unit_roots(frozen: nn.Module) -> list[nn.Module]:
    """The modules that become FSDP units, innermost first: each LM decoder block (or its
    checkpoint wrapper), the LM (the rest of it), the vision tower, the prefix head; the
    FrozenModel itself last, as the root."""
    blocks = block_types(frozen.lm, frozen.lm_traits)
    # A checkpointed block is reached through its wrapper: shard the wrapper (as torchtitan does).
    units = [m for m in frozen.lm.modules() if _is_wrapper(m)] or \
        [m for m in frozen.lm.modules() if isinstance(m, blocks)]
    return [*units, frozen.lm, *trainable_units(frozen).values(), frozen]


def _is_wrapper(module: nn.Module) -> bool:
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import CheckpointWrapper

    return isinstance(module, CheckpointWrapper)


def shard_frozen_model(frozen: nn.Module, mesh, lm_policy,
                       reshard_after_forward: bool = True) -> int:
    """fully_shard every unit of `unit_roots`, the LM's with `lm_policy` (a MixedPrecisionPolicy);
    returns the number of units."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    embedding = set(frozen.lm.get_input_embeddings().parameters())     # replicated, see top
    if frozen.vision is not None:
        # FSDP shards contiguous weights only; convolutions still run channels-last, from
        # their channels-last inputs (FrozenModel.encode_images).
        frozen.vision.to(memory_format=torch.contiguous_format)
    units = unit_roots(frozen)
    for unit in units:
        trainable = {p.requires_grad for p in unit.parameters()} == {True}
        fully_shard(unit, mesh=mesh, ignored_params=embedding,
                    mp_policy=MixedPrecisionPolicy() if trainable else lm_policy,
                    # the vision side runs once per step: keep it gathered for its backward
                    reshard_after_forward=reshard_after_forward and not trainable)
    return len(units)
