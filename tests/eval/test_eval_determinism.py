"""The shapes-world evaluation gives the same predictions for the same seeds, run after run and
whatever the number of CPU threads (the thread choice of frozen.threads differs by machine)."""

from __future__ import annotations

import pytest
import torch
import yaml

from eval.run import run
from eval.settings import build
from frozen.testing import TINY_VISION


@pytest.fixture(scope="module")
def shapes_model():
    """The shipped shapes-world LM under a randomly initialised vocabulary head: varied
    captions, so a numerical difference would show in the predictions."""
    from pathlib import Path

    from frozen import FrozenConfig, FrozenModel
    from frozen.toy import SHAPES_LM_DIR

    toy = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "toy.yaml").read_text())
    fields = dict(toy["model"]["frozen"], lm=str(SHAPES_LM_DIR), vision=dict(TINY_VISION, image_size=64),
                  vision_embed_dim=16)
    torch.manual_seed(0)
    return FrozenModel(FrozenConfig(**fields)).eval()


def predictions(model, out, threads: int) -> list[tuple[str, str, str]]:
    config = {"model": "toy", "out": str(out), "progress": False, "seeds": [20261126],
              "batch_size": 12, "max_queries": 12, "decoding": {"max_new_tokens": 8},
              "tasks": [{"task": "shapes-caption"},
                        {"task": "shapes-binding", "options": {"ways": 2}}]}
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        results = run(build(config, {}), model=model)
    finally:
        torch.set_num_threads(before)
    return [(label, record.id, record.output) for label, result in results.items()
            for record in sorted(result.records, key=lambda r: int(r.id))]


def test_same_seed_same_predictions_at_any_thread_count(shapes_model, tmp_path):
    once = predictions(shapes_model, tmp_path / "a", threads=1)
    assert len(once) == 24 and len({output for _, _, output in once}) > 1
    assert predictions(shapes_model, tmp_path / "b", threads=1) == once
    assert predictions(shapes_model, tmp_path / "c", threads=2) == once
