"""Benchmarks behind one `Task` interface; importing this package registers them all."""

from eval.tasks import captioning, miniimagenet, shapes, vqa  # noqa: F401  (registration)
from eval.tasks.base import Task
from eval.tasks.registry import register, task_class, task_names

__all__ = ["Task", "register", "task_class", "task_names"]
