"""Every YAML under configs/eval/ loads into valid settings; the ones needing no data build
their tasks and prompts."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.settings import build, load_yaml
from eval.tasks import task_class

CONFIGS = sorted((Path(__file__).parents[2] / "configs" / "eval").glob("*.yaml"))


def test_there_are_configs():
    names = {p.stem for p in CONFIGS}
    assert {"coco", "flickr30k", "vqav2", "okvqa", "miniimagenet", "shapes"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds(path):
    settings = build(load_yaml(str(path)), {}, where=str(path))
    assert settings.tasks and settings.model and settings.out
    for task in settings.tasks:
        assert len(task.seeds) == task.trials >= 1          # seeds 0..n-1 unless given
        if "seeds" not in load_yaml(str(path)):
            assert task.seeds == list(range(task.trials))
        assert task_class(task.task).name == task.task


def test_shapes_config_builds_every_task_and_a_prompt():
    path = next(p for p in CONFIGS if p.stem == "shapes")
    settings = build(load_yaml(str(path)), {"max_queries": 2}, where=str(path))
    labels = [t.label for t in settings.tasks]
    assert "shapes-binding-4way-blind" in labels and sum(t.blind for t in settings.tasks) == 6
    for task_settings in settings.tasks:
        task = task_class(task_settings.task)(task_settings)
        queries = task.queries(task_settings.shots[-1], task_settings.seeds[0], None)
        assert len(queries) == 2 and queries[0].references


def test_miniimagenet_config_runs_on_class_folders(classes_dir):
    path = next(p for p in CONFIGS if p.stem == "miniimagenet")
    config = load_yaml(str(path))
    config["tasks"] = [t for t in config["tasks"] if t["options"]["ways"] == 2]
    settings = build(config, {"data": {"path": str(classes_dir)}, "shots": [1], "max_queries": 2},
                     where=str(path))
    for task_settings in settings.tasks:
        task = task_class(task_settings.task)(task_settings)
        task.prepare()
        assert len(task.queries(1, 0, None)) == 2
