"""Model FLOPs utilisation (MFU) of a Frozen training step: the one accounting that train.py
logs and `python -m bench --gpu` reports.

Per step, the frozen LM costs 4N FLOPs per token it reads (forward 2N, the gradient with respect
to its inputs 2N, no weight gradients), 6N when its blocks are recomputed in backward
(activation checkpointing), and the trainable vision tower 3x its forward FLOPs per image
(forward, then gradients for its inputs and its weights). N counts the LM parameters that
multiply every token: all of them but the input-embedding table, a lookup (unless the output
head shares it). Attention's own length-squared FLOPs are left out: captions are short.

MFU = step FLOPs / step seconds / the device's peak dense bf16 FLOPs. Peaks are known for the
GPUs below by their device name; elsewhere (CPU included) there is no MFU.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

# Dense bf16 tensor-core peaks (no sparsity), most specific name first.
PEAK_BF16_FLOPS = (("H200", 989e12), ("H100 PCIe", 756e12), ("H100 NVL", 835e12),
                   ("H100", 989e12), ("A100", 312e12))


def peak_bf16_flops(device: torch.device | str) -> float | None:
    """The device's peak dense bf16 FLOPs per second, None when unknown (e.g. a CPU)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_FLOPS if key in name), None)


def lm_matmul_params(lm: nn.Module) -> int:
    """Parameters of the LM that multiply every token: all but an untied input-embedding table."""
    params = {id(p): p.numel() for p in lm.parameters()}
    embedding = lm.get_input_embeddings().weight
    output = lm.get_output_embeddings()
    if output is None or output.weight is not embedding:
        params.pop(id(embedding), None)
    return sum(params.values())


def tower_forward_flops(tower: nn.Module, image_size: int) -> int:
    """FLOPs of the tower's forward on one image, counted by torch on a meta-device copy (no
    memory, no compute, the live tower untouched)."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        ghost = copy.deepcopy(tower).to("meta")
        image = torch.empty(1, 3, image_size, image_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ghost.eval()(image)
    return counter.get_total_flops()


@dataclasses.dataclass(frozen=True)
class StepFlops:
    """The FLOPs of one training step from what it processed (see the module docstring)."""

    lm_params: int
    tower_flops: int            # one image's forward
    checkpointed: bool = False

    @classmethod
    def of(cls, model, checkpointed: bool = False) -> "StepFlops":
        """For a FrozenModel (before it is sharded)."""
        size = model.image_transform.size if model.vision is not None else 0
        tower = tower_forward_flops(model.vision, size) if model.vision is not None else 0
        return cls(lm_matmul_params(model.lm), tower, checkpointed)

    def __call__(self, lm_tokens: int, images: int) -> float:
        per_token = (6 if self.checkpointed else 4) * self.lm_params
        return per_token * lm_tokens + 3 * self.tower_flops * images


def mfu(flops: float, seconds: float, peak: float) -> float:
    return flops / seconds / peak
