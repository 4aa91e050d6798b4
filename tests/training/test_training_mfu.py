"""The MFU accounting shared by train.py and the GPU bench, on hand-computed cases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from frozen.training.mfu import (StepFlops, lm_matmul_params, mfu, peak_bf16_flops,
                                 tower_forward_flops)


def test_step_flops_by_hand():
    # 4N per LM token (6N with checkpointed blocks) + 3x the tower's forward per image.
    flops = StepFlops(lm_params=1000, tower_flops=50)
    assert flops(lm_tokens=10, images=2) == 4 * 1000 * 10 + 3 * 50 * 2 == 40_300
    assert StepFlops(1000, 50, checkpointed=True)(10, 2) == 6 * 1000 * 10 + 3 * 50 * 2 == 60_300
    assert mfu(40_300, seconds=0.5, peak=80_600) == pytest.approx(1.0)


def test_tower_forward_flops_by_hand():
    tower = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 5, bias=False))
    conv = 2 * (3 * 3 * 3) * 4 * (8 * 8)         # 2 x MACs per output element, 4x8x8 outputs
    linear = 2 * (4 * 8 * 8) * 5
    assert tower_forward_flops(tower, 8) == conv + linear == 16_384
    assert not any(p.is_meta for p in tower.parameters())     # counted on a copy


def test_lm_params_leave_out_the_embedding_lookup(tiny_model):
    lm = tiny_model("llama").lm
    c = lm.config           # hidden 32, MLP 64, 2 layers, 4 heads of 8, 2 key-value heads
    kv = c.num_key_value_heads * c.hidden_size // c.num_attention_heads
    layer = (2 * c.hidden_size * c.hidden_size + 2 * c.hidden_size * kv     # q, o; k, v
             + 3 * c.hidden_size * c.intermediate_size + 2 * c.hidden_size)  # MLP; 2 norms
    expected = c.num_hidden_layers * layer + c.hidden_size + c.vocab_size * c.hidden_size
    assert lm_matmul_params(lm) == expected                # final norm + output head counted
    tied = tiny_model("gpt2").lm                            # its output head is the table
    assert lm_matmul_params(tied) == sum(p.numel() for p in tied.parameters())


def test_no_peak_and_no_mfu_on_cpu():
    assert peak_bf16_flops("cpu") is None
    assert peak_bf16_flops(torch.device("cpu")) is None
