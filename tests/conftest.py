"""Shared fixtures: tiny random LMs (several architectures) and tiny Frozen models, built once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from tiny import TINY_VISION, make_tiny_lm_dir  # noqa: E402

# Tiny models gain nothing from threads, and on a busy 2-core machine threaded kernels stall.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def lm_dirs(tmp_path_factory):
    """arch -> folder of a tiny random LM with its tokenizer."""
    root = tmp_path_factory.mktemp("tiny-lms")
    cache: dict[str, str] = {}

    def get(arch: str = "llama", **kwargs) -> str:
        key = f"{arch}-{sorted(kwargs.items())}"
        if key not in cache:
            cache[key] = make_tiny_lm_dir(root, arch, **kwargs)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def tiny_config(lm_dirs):
    from frozen import FrozenConfig

    def make(arch: str = "llama", **overrides) -> FrozenConfig:
        fields = dict(lm=lm_dirs(arch), vision=TINY_VISION, vision_embed_dim=16,
                      num_prefix_tokens=2)
        fields.update(overrides)
        return FrozenConfig(**fields)

    return make


@pytest.fixture
def tiny_model(tiny_config):
    from frozen import FrozenModel

    def make(arch: str = "llama", **overrides):
        return FrozenModel(tiny_config(arch, **overrides))

    return make
