"""The task registry: task name -> Task class, filled by the `@register` decorator."""

from __future__ import annotations

import difflib

from ..errors import EvalError
from .base import Task

_TASKS: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make `cls` available under `cls.name`."""
    if cls.name in _TASKS and _TASKS[cls.name] is not cls:
        raise ValueError(f"task name {cls.name!r} is registered twice")
    _TASKS[cls.name] = cls
    return cls


def task_class(name: str) -> type[Task]:
    """The Task class registered as `name`; an unknown name raises EvalError with suggestions."""
    if name not in _TASKS:
        close = difflib.get_close_matches(name, _TASKS, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise EvalError(f"unknown task {name!r}{hint} (known tasks: {', '.join(sorted(_TASKS))})")
    return _TASKS[name]


def task_names() -> list[str]:
    return sorted(_TASKS)
