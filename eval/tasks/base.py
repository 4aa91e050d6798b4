"""The task interface: what every benchmark provides to the shared few-shot loop.

A task turns (shots, seed) into scored queries: each `Query` carries a complete prompt (text
and `ImageRef` items), the references it is scored against and the image shown in the report.
The loop generates, the task reads the answer out of the generated text and scores a trial.

A task also checks its own `options:` (`check_options`), so eval.settings knows only the
settings every task shares. A new task is one module here, registered with `@register`
(tasks/__init__.py imports every module of the package).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from frozen.config import did_you_mean

from ..errors import EvalError
from ..queries import Query, Record

if TYPE_CHECKING:
    from ..selection import Selector


class Task(ABC):
    """One benchmark. Subclasses are small: data loading, prompts, answer reading, scoring."""

    name: ClassVar[str]
    description: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]            # the headline metrics, primary first
    defaults: ClassVar[dict[str, Any]] = {}       # this task's defaults for TaskSettings fields
    option_defaults: ClassVar[dict[str, Any]] = {}  # task-specific `options:` and their defaults
    data_files: ClassVar[dict[str, str]] = {}     # data key -> default path under the data root
    primary_data: ClassVar[str | None] = None     # the data key a bare file path (--data FILE) sets
    uses_selection: ClassVar[bool] = False        # demonstrations are chosen from a train split
    prompt_defines_answer: ClassVar[bool] = False  # the demonstrations define the answer (fast
    #   binding: they name the classes); the report then shows each example's whole prompt

    def __init__(self, settings):
        """settings: this task's eval.settings.TaskSettings (eval.settings.build makes them)."""
        self.settings = settings
        self.options: dict[str, Any] = self.check_options(settings.options)
        self.data: dict[str, Path] = resolve_data(self, settings.data)
        self.notes: list[str] = []                # said once in results.json (e.g. SPICE skipped)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The task's options with its defaults filled in. An unknown option raises EvalError
        naming the task, the option and the known ones; a task whose options take only some
        values extends this (super() first, then its checks)."""
        known = tuple(cls.option_defaults)
        for key in options:
            if key not in known:
                raise EvalError(f"task {cls.name}: unknown option {key!r}{did_you_mean(key, known)}; "
                                f"expected one of {', '.join(known) or 'none (this task has no options)'}")
        return {**cls.option_defaults, **options}

    @abstractmethod
    def queries(self, shots: int, seed: int, selector: "Selector | None") -> list[Query]:
        """The trial's queries with complete prompts; the same (shots, seed) gives the same prompts."""

    @abstractmethod
    def read(self, output: str) -> str:
        """The answer in a generated continuation (already cut at the stop strings)."""

    @abstractmethod
    def score(self, records: Sequence[Record]) -> dict[str, float]:
        """Metric name -> value (percent) for one trial's records."""

    def prepare(self) -> None:
        """Read and check the task's data now (before a large model is loaded), so that a
        missing or malformed file is reported at once."""

    def stop_strings(self) -> list[str]:
        """Where generation stops; the model cuts its output before the first of them."""
        return list(self.settings.stop or [])

    def export(self, records: Sequence[Record]) -> list[dict[str, Any]] | None:
        """An official-format results file for one trial (e.g. COCO [{"image_id", "caption"}])."""
        return None


def resolve_data(task: Task, data: dict[str, str]) -> dict[str, Path]:
    """Data keys -> paths. `path` is a bare --data value: a file sets the task's primary key
    (its folder becomes the root), a folder becomes the root. Relative paths sit under `root`."""
    if not task.data_files:
        return {}
    data = dict(data)
    unknown = set(data) - set(task.data_files) - {"root", "path"}
    if unknown:
        raise EvalError(f"task {task.name}: unknown data key(s) {sorted(unknown)}; "
                        f"expected {sorted(task.data_files)} and optionally 'root'")
    if not data:
        keys = ", ".join(f"{k}: {v}" for k, v in task.data_files.items())
        raise EvalError(f"task {task.name} needs data: pass --data DIR (a folder holding "
                        f"{keys}) or set data: {{{keys}}} in the config")
    root: Path | None = Path(data["root"]) if "root" in data else None
    if "path" in data:
        bare = Path(data.pop("path"))
        if bare.is_file() and task.primary_data:
            data.setdefault(task.primary_data, str(bare))
            root = root or bare.parent
        elif bare.is_dir():
            root = root or bare
        else:
            raise EvalError(f"task {task.name}: data path not found: {str(bare)!r}")
    if root is not None and not root.is_dir():
        raise EvalError(f"task {task.name}: data root is not a folder: {str(root)!r}")
    resolved = {}
    for key, default in task.data_files.items():
        path = Path(data.get(key, default))
        if not path.is_absolute() and root is not None:
            path = root / path
        resolved[key] = path
    return resolved


def require_file(task: Task, key: str, what: str) -> Path:
    """The path of data key `key`, which must be an existing file."""
    path = task.data[key]
    if not path.is_file():
        raise EvalError(f"task {task.name}: {what} not found at {str(path)!r} "
                        f"(set data.{key} in the config, or --data {key}=PATH)")
    return path


def require_dir(task: Task, key: str, what: str) -> Path:
    """The path of data key `key`, which must be an existing folder."""
    path = task.data[key]
    if not path.is_dir():
        raise EvalError(f"task {task.name}: {what} folder not found at {str(path)!r} "
                        f"(set data.{key} in the config, or --data {key}=PATH)")
    return path


def read_json(task: Task, path: Path, what: str) -> Any:
    """Parse a JSON data file; malformed JSON raises EvalError naming the file and position."""
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise EvalError(f"task {task.name}: {what} {str(path)!r} is not valid JSON "
                        f"(line {err.lineno}, column {err.colno}: {err.msg})") from None
    except OSError as err:
        raise EvalError(f"task {task.name}: cannot read {what} {str(path)!r}: {err.strerror}") from None


def field_of(task: Task, record: Any, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    """record[key] checked for presence and type; errors name the file position and field."""
    if not isinstance(record, dict):
        raise EvalError(f"task {task.name}: {where} should be a JSON object, got {type(record).__name__}")
    if key not in record:
        raise EvalError(f"task {task.name}: {where} has no field {key!r}")
    value = record[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise EvalError(f"task {task.name}: {where}.{key} should be {names}, got {value!r:.60}")
    return value
