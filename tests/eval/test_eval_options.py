"""Each task checks its own `options:` (Task.check_options); eval.settings checks only what every
task shares and finds tasks through the registry, so a new task is its own module alone."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from eval.errors import EvalError
from eval.settings import build
from eval.tasks import Task, task_class, task_names
from eval.tasks import registry

TASKS_DIR = Path(__file__).resolve().parents[2] / "eval" / "tasks"


@pytest.mark.parametrize("name", task_names())
def test_every_task_accepts_its_defaults_and_names_an_unknown_option(name):
    cls = task_class(name)
    assert cls.check_options({}) == cls.option_defaults
    first = next(iter(cls.option_defaults))
    with pytest.raises(EvalError) as err:
        cls.check_options({first + "x": 1})
    message = str(err.value)
    assert message.startswith(f"task {name}: unknown option '{first}x' (did you mean '{first}'?)")
    assert message.endswith("expected one of " + ", ".join(cls.option_defaults))


def test_option_values_are_checked_when_the_settings_are_built(tmp_path):
    run = {"model": "unused", "out": str(tmp_path)}
    with pytest.raises(EvalError, match="task shapes-binding: options.ways must be 2, 3 or 4"):
        build({"task": "shapes-binding", "options": {"ways": 5}}, run)
    with pytest.raises(EvalError, match="task miniimagenet: options.repeats must be an integer >= 0"):
        build({"task": "miniimagenet", "options": {"repeats": -1}}, run)
    with pytest.raises(EvalError, match="task coco: options.metrics must list some of"):
        build({"task": "coco", "options": {"metrics": ["CIDEr", "WER"]}}, run)
    with pytest.raises(EvalError, match=r"task shapes-style: unknown style\(s\) \['loud'\]"):
        build({"task": "shapes-style", "options": {"styles": ["loud"]}}, run)
    settings = build({"task": "shapes-binding", "options": {"ways": 3}}, run)
    assert settings.tasks[0].options == {"split": "train", "ways": 3}


class CountingTask(Task):
    """A task defined outside eval/: registered, it runs through build like any other."""

    name = "counting"
    description = "count to options.limit"
    metrics = ("exact_match",)
    option_defaults = {"limit": 3}

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        options = super().check_options(options)
        if not isinstance(options["limit"], int) or options["limit"] < 1:
            raise EvalError(f"task {cls.name}: options.limit must be an integer >= 1")
        return options

    def queries(self, shots, seed, selector):
        return []

    def read(self, output):
        return output

    def score(self, records):
        return {}


def test_a_new_task_brings_its_own_options_through_the_registry(tmp_path, monkeypatch):
    monkeypatch.setitem(registry._TASKS, CountingTask.name, CountingTask)
    run = {"model": "unused", "out": str(tmp_path)}
    settings = build({"task": "counting", "options": {"limit": 7}}, run)
    assert settings.tasks[0].options == {"limit": 7}
    assert CountingTask(settings.tasks[0]).options == {"limit": 7}
    with pytest.raises(EvalError, match=r"task counting: unknown option 'limt' \(did you mean 'limit'\?\); "
                                        r"expected one of limit"):
        build({"task": "counting", "options": {"limt": 7}}, run)
    with pytest.raises(EvalError, match="task counting: options.limit must be an integer >= 1"):
        build({"task": "counting", "options": {"limit": 0}}, run)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports (also under TYPE_CHECKING), as absolute names in the eval package."""
    package = ["eval", *path.parent.relative_to(TASKS_DIR.parent).parts]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            names.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_task_module_imports_the_settings():
    for path in sorted(TASKS_DIR.glob("*.py")):
        assert "eval.settings" not in imported_modules(path), path.name
    assert "eval.tasks" in imported_modules(TASKS_DIR.parent / "settings.py")
