"""The shapes world learns: a short train.py run with configs/toy.yaml against the shipped
frozen LM, then eval/ on fresh renders, captions far above chance and the blind baseline at
about chance; the LM's weights are untouched."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
from safetensors.torch import load_file

from frozen import FrozenModel
from frozen.toy import SHAPES_LM_DIR
from frozen.toy.shards import write_dataset

ROOT = Path(__file__).resolve().parents[2]
CHANCE = 100 / 80            # exact match by guessing one of the 80 captions, in percent
STEPS = 400


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import train

    out = tmp_path_factory.mktemp("toy")
    patterns = write_dataset(out / "data", 2048, 64, progress=False)
    args = ["fit", "--config", str(ROOT / "configs" / "toy.yaml"),
            "--model.frozen.lm", str(SHAPES_LM_DIR),
            "--data.train_shards", patterns["train"], "--data.val_shards", patterns["val"],
            "--data.num_workers", "0", "--data.val_samples", "64",
            "--trainer.max_steps", str(STEPS), "--trainer.val_check_interval", str(STEPS),
            "--trainer.default_root_dir", str(out), "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    with mock.patch.object(sys, "argv", ["train.py"]):
        train.main(args)
    return out


def _exact_match(out: Path, *extra: str) -> float:
    from eval.__main__ import main as eval_main

    assert eval_main(["--model", str(out / "inference"), "--task", "shapes-caption",
                      "--seeds", "4242", "--max-queries", "64", "--out", str(out / "eval"),
                      "--restart", "--no-progress", *extra]) == 0
    (task,) = json.loads((out / "eval" / "results.json").read_text())["tasks"].values()
    return task["scores"]["0"]["mean"]["exact_match"]


def test_short_training_captions_far_above_chance_and_uses_the_image(trained):
    seen = _exact_match(trained)
    blind = _exact_match(trained, "--blind")
    print(f"after {STEPS} steps: exact match {seen:.1f}%, blind {blind:.1f}% (chance {CHANCE}%)")
    assert seen >= 20 * CHANCE, seen
    assert blind <= 5, blind


def test_lm_weights_are_bit_identical_after_training(trained):
    model = FrozenModel.from_pretrained(trained / "inference")
    state = model.lm.state_dict()
    shipped = load_file(str(SHAPES_LM_DIR / "model.safetensors"))
    assert shipped.keys() <= state.keys()
    assert all(torch.equal(state[name], weight) for name, weight in shipped.items())
