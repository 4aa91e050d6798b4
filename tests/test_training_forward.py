"""The training forward pass: loss on targets only, gradients reach only the vision side."""

from __future__ import annotations

import math

import torch
from PIL import Image

from frozen import Target
from frozen.prompts import IGNORE_INDEX


def images(n):
    return [Image.new("RGB", (32, 32), ((60 * i) % 255, 100, 200 - 30 * i)) for i in range(n)]


def test_labels_cover_only_target_tokens_and_eos(tiny_model):
    model = tiny_model()
    a, b = images(2)
    batch = model.collate([[a, Target("a red circle")], ["context ", b, Target("blue")]])
    tok = model.tokenizer
    for row in range(2):
        labels = batch.labels[row][batch.labels[row] != IGNORE_INDEX].tolist()
        text = tok.decode(labels[:-1])
        assert labels[-1] == tok.eos_token_id
        assert text == ["a red circle", "blue"][row]
    assert not (batch.labels[batch.image_mask] != IGNORE_INDEX).any()
    assert not (batch.labels[batch.attention_mask == 0] != IGNORE_INDEX).any()
    assert batch.pixel_values.shape == (2, 3, 32, 32)


def test_left_padding_positions(tiny_model):
    model = tiny_model()
    batch = model.collate([["a b c d e f", Target("x")], ["a", Target("x")]])
    short = batch.attention_mask[1]
    assert short[0] == 0 and short[-1] == 1
    real = batch.position_ids[1][short.bool()]
    assert real.tolist() == list(range(int(short.sum())))


def test_gradients_reach_only_the_vision_side(tiny_model):
    model = tiny_model()
    model.train()
    batch = model.collate([[img, Target("a red circle on the left")] for img in images(3)])
    out = model(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    for name, param in model.named_parameters():
        if model.is_trainable(name):
            continue
        assert param.grad is None, f"frozen LM parameter {name} received a gradient"
    grads = [p.grad for p in model.vision.parameters()] + [p.grad for p in model.prefix_head.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert not model.lm.training and model.vision.training


def test_optimizer_step_leaves_lm_bit_identical(tiny_model):
    model = tiny_model()
    model.train()
    before = {k: v.clone() for k, v in model.lm.state_dict().items()}
    vision_before = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    opt = torch.optim.Adam(model.trainable_parameters(), lr=1e-2, betas=(0.9, 0.95))
    batch = model.collate([[img, Target("a red circle")] for img in images(4)])
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = model(batch).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8
    after = model.lm.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    changed = [k for k, v in model.trainable_state_dict().items() if not torch.equal(v, vision_before[k])]
    assert any(k.startswith("vision.") for k in changed) and any(k.startswith("prefix_head.") for k in changed)


def test_no_target_tokens_gives_zero_loss_not_nan(tiny_model):
    model = tiny_model()
    model.train()
    batch = model.collate([[img, "no targets here"] for img in images(2)])
    out = model(batch)
    assert out.num_target_tokens.item() == 0
    assert out.loss.item() == 0.0 and not math.isnan(out.loss.item())
    out.loss.backward()          # still differentiable


def test_lm_stays_in_eval_mode(tiny_model):
    model = tiny_model()
    model.train()
    assert not model.lm.training and all(not m.training for m in model.lm.modules())
    model.train(False)
    model.train(True)
    assert not model.lm.training


def test_mlp_head_over_patch_tokens(tiny_model):
    vit = {"layers": 1, "width": 32, "head_width": 16, "patch_size": 8, "image_size": 32}
    model = tiny_model(vision=vit, prefix_head="mlp", num_prefix_tokens=3)
    batch = model.collate([[img, Target("a red circle")] for img in images(2)])
    assert int(batch.image_mask[0].sum()) == 3
    model(batch).loss.backward()
    assert model.prefix_head.mlp[0].weight.grad is not None


def test_prefix_scale_matches_lm_embeddings(tiny_model):
    model = tiny_model()
    prefix = model.encode_images(model.collate([[img] for img in images(2)]).pixel_values)
    token_rms = model.lm.get_input_embeddings().weight.pow(2).mean(-1).sqrt().mean()
    prefix_rms = prefix.pow(2).mean(-1).sqrt()
    assert torch.allclose(prefix_rms, token_rms.expand_as(prefix_rms), rtol=1e-3)


def test_vocabulary_head_mixes_the_lms_own_embeddings(tiny_model):
    model = tiny_model(prefix_head="vocabulary")
    model.train()
    batch = model.collate([[img, Target("a red circle")] for img in images(3)])
    model(batch).loss.backward()
    assert model.prefix_head.query.weight.grad is not None
    assert model.prefix_head.log_sharpness.grad is not None
    assert model.lm.get_input_embeddings().weight.grad is None
    # Each prefix vector is a convex mixture of token embeddings: solve for the weights.
    embeddings = model.lm.get_input_embeddings().weight.detach()           # (V, D)
    prefix = model.encode_images(batch.pixel_values).detach()              # (N, n, D)
    query = torch.nn.functional.normalize(
        model.prefix_head.query(model.vision(model.image_transform.normalize(batch.pixel_values)))
        .view(3, -1, embeddings.shape[1]), dim=-1)
    weights = (query @ torch.nn.functional.normalize(embeddings, dim=-1).T
               * model.prefix_head.log_sharpness.exp()).softmax(-1)
    assert torch.allclose(prefix, weights @ embeddings, atol=1e-5)


def test_vocabulary_head_restricted_to_listed_tokens(tiny_model):
    model = tiny_model(prefix_head="vocabulary", prefix_head_options={"vocabulary": ["a", "b"]})
    ids = [model.tokenizer.convert_tokens_to_ids(t) for t in ("a", "b")]
    allowed = model.lm.get_input_embeddings().weight[ids].detach()           # (2, D)
    prefix = model.encode_images(model.collate([[img] for img in images(2)]).pixel_values)
    # Every prefix vector lies on the segment between the two allowed embeddings.
    direction = allowed[1] - allowed[0]
    t = ((prefix - allowed[0]) @ direction) / direction.dot(direction)      # (N, n)
    assert ((t >= -1e-5) & (t <= 1 + 1e-5)).all()
    assert torch.allclose(prefix, allowed[0] + t[..., None] * direction, atol=1e-5)


def test_per_slot_vocabulary_keeps_each_slot_to_its_own_tokens(tiny_model):
    groups = [["a", "b"], ["c", "d", "e"]]
    model = tiny_model(prefix_head="vocabulary", num_prefix_tokens=2,
                       prefix_head_options={"vocabulary": groups, "anneal": 1e4}).eval()
    model.prefix_head.on_train_progress(1.0)                # sharp: each slot is one real token
    prefix = model.encode_images(model.collate([[img] for img in images(4)]).pixel_values)
    embeddings = model.lm.get_input_embeddings().weight.detach()           # (V, D)
    nearest = torch.cdist(prefix.detach().reshape(-1, prefix.shape[-1]), embeddings).argmin(-1)
    tokens = model.tokenizer.convert_ids_to_tokens(nearest.view(4, 2).T.reshape(-1).tolist())
    assert set(tokens[:4]) <= set(groups[0]) and set(tokens[4:]) <= set(groups[1])


def test_annealed_vocabulary_head_gives_real_tokens(tiny_model):
    model = tiny_model(prefix_head="vocabulary", prefix_head_options={"anneal": 1e4}).eval()
    pixels = model.collate([[img] for img in images(2)]).pixel_values
    soft = model.encode_images(pixels).detach()
    model.prefix_head.on_train_progress(1.0)
    sharp = model.encode_images(pixels).detach()                             # (N, n, D)
    embeddings = model.lm.get_input_embeddings().weight.detach()           # (V, D)
    distance = torch.cdist(sharp.reshape(-1, sharp.shape[-1]), embeddings).min(-1).values
    assert (distance < 1e-3).all()                  # each prefix vector is one token's embedding
    assert not torch.allclose(soft, sharp)


def test_hard_vocabulary_head_gives_real_tokens_with_gradients_straight_through(tiny_model):
    model = tiny_model(prefix_head="vocabulary", prefix_head_options={"hard": True, "hard_from": 0.5})
    pixels = model.collate([[img] for img in images(2)]).pixel_values
    embeddings = model.lm.get_input_embeddings().weight.detach()             # (V, D)

    def distance_to_nearest_token(prefix):                                   # (N, n, D) -> (N * n,)
        return torch.cdist(prefix.detach().reshape(-1, prefix.shape[-1]), embeddings).min(-1).values

    model.eval()
    assert (distance_to_nearest_token(model.encode_images(pixels)) < 1e-3).all()   # inference
    model.train()
    model.prefix_head.on_train_progress(0.4)              # before hard_from: soft mixtures
    assert distance_to_nearest_token(model.encode_images(pixels)).max() > 1e-3
    model.prefix_head.on_train_progress(0.6)              # from hard_from on: straight-through
    prefix = model.encode_images(pixels)                  # (N, n, D)
    assert distance_to_nearest_token(prefix).max() < 1e-3
    prefix.pow(2).sum().backward()
    assert model.prefix_head.query.weight.grad.abs().sum() > 0
