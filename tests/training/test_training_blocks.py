"""The LM's decoder blocks: found from the model, and non-reentrant activation checkpointing
that gives the same gradients to the vision side although the LM stays in eval mode."""

from __future__ import annotations

import pytest
import torch

from frozen.prompts import Target
from frozen.training.blocks import checkpoint_blocks


@pytest.mark.parametrize("arch, block", [("llama", "LlamaDecoderLayer"), ("gpt2", "GPT2Block")])
def test_blocks_are_found_from_the_model(tiny_model, arch, block):
    assert [t.__name__ for t in tiny_model(arch).lm_traits.block_types] == [block]


def test_activation_checkpointing_keeps_the_gradients(tiny_model):
    model = tiny_model("llama").train()
    torch.manual_seed(0)
    images = torch.randn(2, 3, 32, 32)
    batch = model.collate([[images[0], Target("a red picture")],
                           [images[1], Target("a blue one")]])
    model.eval()        # fixed BatchNorm statistics, so both passes compute the same function

    def grads():
        model.zero_grad(set_to_none=True)
        model(batch).loss.backward()
        return [p.grad.clone() for p in model.trainable_parameters()]

    calls = []
    block = next(m for m in model.lm.modules() if isinstance(m, model.lm_traits.block_types))
    mlp_forward = block.mlp.forward
    block.mlp.forward = lambda x: calls.append(1) or mlp_forward(x)
    plain = grads()
    assert len(calls) == 1
    assert checkpoint_blocks(model.lm, model.lm_traits) == model.lm.config.num_hidden_layers
    assert not model.lm.training
    checkpointed = grads()
    assert len(calls) == 3          # forward, then recomputed in backward: checkpointing is on
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, checkpointed))
    assert all(p.grad is None for p in model.lm.parameters())
