"""Fixtures of the evaluation tests: a tiny random Frozen model saved to disk, a fake model with
FrozenModel's generate / image_features signatures, and tiny data sets written in the formats
of the real ones (Karpathy JSON, VQA questions/annotations, class folders)."""

from __future__ import annotations

import pytest
from fake_model import FakeModel
from tiny_data import write_class_folders, write_karpathy, write_vqa


@pytest.fixture
def fake_model():
    return FakeModel


@pytest.fixture(scope="session")
def frozen_model_dir(tiny_config, tmp_path_factory):
    """A tiny random FrozenModel saved with save_pretrained (what --model points at)."""
    from frozen import FrozenModel

    folder = tmp_path_factory.mktemp("eval-model") / "model"
    FrozenModel(tiny_config()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def frozen_model(frozen_model_dir):
    """The saved tiny model, loaded once."""
    from eval.run import load_model

    return load_model(str(frozen_model_dir), "cpu")


@pytest.fixture
def coco_dir(tmp_path):
    write_karpathy(tmp_path / "coco")
    return tmp_path / "coco"


@pytest.fixture
def vqa_dir(tmp_path):
    return write_vqa(tmp_path / "vqa")


@pytest.fixture
def classes_dir(tmp_path):
    return write_class_folders(tmp_path / "mini")
