"""The LM build script is deterministic: the same seed gives the same weights bit for bit, so
the shipped weights are reproducible by `python -m frozen.toy.build_lm`."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from frozen.toy.build_lm import LMRecipe, build

SHORT = LMRecipe(hidden_size=32, num_heads=2, intermediate_size=64, num_layers=1, steps=4,
                 batch_size=8, pool_batches=2, warmup_steps=2)


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        build(tmp_path / name, seed, SHORT, progress=False)
    a, b, c = (_weights(tmp_path / name) for name in "abc")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (tmp_path / "b" / "tokenizer.json").read_text()
