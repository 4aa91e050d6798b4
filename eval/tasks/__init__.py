"""Benchmarks behind one `Task` interface. Importing this package imports every module in it,
and each task class registers itself (`@register`): a new task is a new module here, nothing else."""

import importlib
import pkgutil

from .base import Task
from .registry import register, task_class, task_names

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Task", "register", "task_class", "task_names"]
