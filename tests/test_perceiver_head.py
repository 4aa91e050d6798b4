"""The Perceiver-resampler head: shapes, gradients, learning through a tiny LM, bad towers and
options rejected, and a save/load round trip."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from frozen import FrozenConfig, FrozenModel, Target

VIT = {"layers": 1, "width": 32, "head_width": 16, "patch_size": 8, "image_size": 32}  # W = 32
OPTIONS = {"layers": 2, "heads": 4}


def perceiver(tiny_model, **overrides):
    fields = dict(vision=VIT, prefix_head="perceiver", num_prefix_tokens=3,
                  prefix_head_options=OPTIONS)
    return tiny_model(**{**fields, **overrides})


def captioned(n):
    colors = [(220, 30, 30), (30, 200, 40), (40, 60, 220), (230, 220, 40)]
    words = ["red", "green", "blue", "yellow"]
    return [[Image.new("RGB", (32, 32), colors[i]), Target(f"a {words[i]} square")]
            for i in range(n)]


def test_patch_tokens_become_n_prefix_embeddings(tiny_model):
    model = perceiver(tiny_model).eval()
    head = model.prefix_head
    assert len(head.layers) == 2 and head.layers[0].attention.num_heads == 4
    assert head.latents.shape == (3, 32)                                    # (n, W)
    for patches in (16, 5):                              # any number of patch tokens P
        assert head(torch.randn(2, patches, 32)).shape == (2, 3, model.lm_dim)
    pixels = model.collate([[image] for image, _ in captioned(4)]).pixel_values
    assert model.encode_images(pixels).shape == (4, 3, model.lm_dim)       # (N, n, D)
    assert int(model.collate(captioned(1)).image_mask.sum()) == 3


def test_gradients_reach_every_head_weight_and_none_of_the_lm(tiny_model):
    model = perceiver(tiny_model)
    model(model.collate(captioned(2))).loss.backward()
    for name, param in model.prefix_head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in model.lm.parameters())
    assert any(p.grad is not None for p in model.vision.parameters())


def test_a_few_steps_lower_the_caption_loss(tiny_model):
    torch.manual_seed(0)
    model = perceiver(tiny_model).train()
    batch = model.collate(captioned(4))
    # The head alone trains (the tower stays as built): the fall is the resampler's doing.
    optimizer = torch.optim.Adam(model.prefix_head.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = model(batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses


def test_a_tower_without_patch_tokens_is_refused(tiny_model):
    with pytest.raises(ValueError, match=r"prefix_head 'perceiver' needs patch tokens, but the "
                                         r"tower .* gives only a pooled feature"):
        tiny_model(prefix_head="perceiver")                 # the default tower is a ResNet


def test_bad_options_are_refused(tiny_model):
    with pytest.raises(ValueError, match=r"\['heads'\] = 5 must divide the tower's patch-token "
                                         r"width 32"):
        perceiver(tiny_model, prefix_head_options={"heads": 5})
    with pytest.raises(ValueError, match=r"\['layers'\] must be an integer >= 1, got 0"):
        FrozenConfig(lm="some/model", prefix_head="perceiver", prefix_head_options={"layers": 0})
    with pytest.raises(ValueError, match=r"prefix_head 'perceiver' has no option 'layer' \(did "
                                         r"you mean 'layers'\?\)"):
        FrozenConfig(lm="some/model", prefix_head="perceiver", prefix_head_options={"layer": 2})


def test_save_and_load_give_the_same_prefixes(tiny_model, tmp_path):
    model = perceiver(tiny_model).eval()
    loaded = FrozenModel.from_pretrained(model.save_pretrained(tmp_path / "saved"))
    assert loaded.config.prefix_head_options == OPTIONS
    pixels = model.collate(captioned(2)).pixel_values
    assert torch.equal(model.encode_images(pixels), loaded.encode_images(pixels))
