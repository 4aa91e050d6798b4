"""LM loading: devices without checkpoints, fingerprints, context windows."""

from __future__ import annotations

import torch

from frozen import FrozenModel


def test_lm_device_builds_from_config_alone(tiny_config):
    loaded = FrozenModel(tiny_config())
    meta = FrozenModel(tiny_config(lm_device="meta"))
    assert all(p.is_meta for p in meta.lm.parameters())
    random = FrozenModel(tiny_config(lm_device="cpu"))
    assert not any(p.is_meta for p in random.lm.parameters())
    first = next(iter(loaded.lm.state_dict()))
    assert not torch.equal(loaded.lm.state_dict()[first], random.lm.state_dict()[first])
    # same architecture and vocabulary: the same fingerprint, weights or not
    assert loaded.lm_fingerprint() == meta.lm_fingerprint() == random.lm_fingerprint()


def test_context_length_per_architecture(tiny_model, lm_dirs):
    assert tiny_model("gpt2").context_length == 256
    assert tiny_model("opt", lm=lm_dirs("opt", context=128)).context_length == 128
