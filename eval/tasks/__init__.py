"""Benchmarks behind one `Task` interface; importing this package registers them all."""

from . import captioning, miniimagenet, shapes, vqa  # noqa: F401  (registration)
from .base import Task
from .registry import register, task_class, task_names

__all__ = ["Task", "register", "task_class", "task_names"]
