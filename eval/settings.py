"""Run and task settings: defaults, YAML configs, command-line overrides, validation.

Precedence, lowest first: the task class's defaults, the config's top-level task keys (shared
by all its tasks), the config's `tasks:` entry, the command line. The settings every task
shares are checked here; each task checks its own `options:` (Task.check_options), found by
name in the task registry. An error names the task and the field.

A config is either one task (task keys at the top level) or several:

    model: runs/toy/model
    out: runs/eval/shapes
    trials: 3                       # top-level task keys apply to every task below
    tasks:
      - {task: shapes-caption}
      - {task: shapes-binding, label: shapes-binding-4way, options: {ways: 4}}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frozen.config import did_you_mean

from .errors import EvalError
from .tasks import task_class

if TYPE_CHECKING:                  # frozen (torch, transformers) loads only when a task is built
    from frozen.sampling import SamplingOptions

RUN_KEYS = ("model", "out", "lm", "dtype", "device", "cache_dir", "report_examples", "progress", "restart")
SELECTIONS = ("random", "rices")
DEVICES = ("auto", "cpu", "cuda", "mps")


# A task's `decoding:` takes every frozen.SamplingOptions field but those the loop sets.
LOOP_DECODING = {
    "stop": "the task's stop strings come from its template and its `stop:` setting",
    "num_return_sequences": "each query gets one answer",
    "static_cache": "the fast decode path is taken on a CUDA device",
    "compile": "the fast decode path compiles on a CUDA device",
}
DEFAULT_DECODING = {"max_new_tokens": 20}       # greedy otherwise


def decoding_options(given: dict[str, Any], where: str) -> "SamplingOptions":
    """A task's `decoding:` mapping as SamplingOptions, over DEFAULT_DECODING."""
    from frozen.sampling import SamplingOptions

    for key in given:
        if key in LOOP_DECODING:
            raise EvalError(f"{where}: decoding: {key!r} is not set here: {LOOP_DECODING[key]}")
    try:
        return SamplingOptions.from_dict({**DEFAULT_DECODING, **given})
    except ValueError as err:
        raise EvalError(f"{where}: decoding: {err}") from None


def default_decoding() -> "SamplingOptions":
    return decoding_options({}, "defaults")


@dataclass
class TaskSettings:
    """Everything that decides one task's prompts, decoding and scores."""

    task: str
    label: str                         # name in the outputs (unique within a run)
    data: dict[str, str] = field(default_factory=dict)
    shots: list[int] = field(default_factory=lambda: [0, 4, 8, 16, 32])
    trials: int = 3
    seeds: list[int] = field(default_factory=list)
    max_queries: int | None = None     # queries per trial (a random subset); None: all
    demo_pool_size: int | None = None  # random subset of the train split per trial; None: all
    selection: str = "random"          # random | rices
    zero_shot_text_demos: int = 0      # OpenFlamingo: "0-shot" = 2 demonstrations without images
    template: str | None = None        # demonstration template, e.g. <image>Output:{caption}<|endofchunk|>
    query_template: str | None = None  # default: the template cut before the answer field
    stop: list[str] | None = None      # default: the text after the answer field in the template
    decoding: SamplingOptions = field(default_factory=default_decoding)
    batch_size: int = 8
    blind: bool = False                # every image black: the blind baseline
    options: dict[str, Any] = field(default_factory=dict)  # task-specific, see each task

    def fingerprint(self) -> dict[str, Any]:
        """The settings that decide the outputs (batch size does not)."""
        data = dataclasses.asdict(self)
        data.pop("batch_size")
        decoding = {k: v for k, v in data["decoding"].items() if k not in LOOP_DECODING}
        if not decoding["min_new_tokens"]:    # left out at its default: logs that do not
            del decoding["min_new_tokens"]    # record it stay resumable
        data["decoding"] = decoding
        return data


@dataclass
class RunSettings:
    """One invocation: a model, an output folder and the tasks to evaluate."""

    model: str
    out: str
    tasks: list[TaskSettings]
    lm: str | None = None              # the frozen LM's folder, when not where the model was trained
    dtype: str | None = None           # the LM's dtype at load time (float32 | bfloat16 | float16)
    device: str = "auto"
    cache_dir: str | None = None       # RICES features; default <out>/cache
    report_examples: int = 12          # queries shown with thumbnails per task in report.html
    progress: bool = True
    restart: bool = False              # discard logged predictions instead of resuming


TASK_KEYS = tuple(f.name for f in dataclasses.fields(TaskSettings))


def load_yaml(path: str) -> dict[str, Any]:
    """A YAML config as a dict; a missing or malformed file raises EvalError."""
    import yaml

    config = Path(path)
    if not config.is_file():
        raise EvalError(f"config file not found: {path!r}")
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise EvalError(f"config {path!r} is not valid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EvalError(f"config {path!r} must be a mapping of settings, got {type(data).__name__}")
    return data


def default_out(model: str, name: str) -> str:
    """Where a run writes when no `out` is given: eval/<name> beside the model folder
    (runs/toy/inference -> runs/toy/eval/<name>)."""
    return str(Path(model).parent / "eval" / name)


def build(config: dict[str, Any], overrides: dict[str, Any], select: list[str] | None = None,
          where: str = "config", name: str | None = None) -> RunSettings:
    """RunSettings from a config dict (possibly empty), command-line overrides and a task filter.

    name: the output folder's name when no `out` is given (default: the task labels)."""
    config = dict(config)
    entries = config.pop("tasks", None)
    run = {k: config.pop(k) for k in RUN_KEYS if k in config}
    shared = config                                    # what is left: task keys for every task
    _check_keys(shared, TASK_KEYS, where, "top-level key", extra=RUN_KEYS + ("tasks",))
    run_over = {k: v for k, v in overrides.items() if k in RUN_KEYS}
    task_over = {k: v for k, v in overrides.items() if k not in RUN_KEYS}
    _check_keys(task_over, TASK_KEYS, "command line", "option")

    if entries is None:
        if select:
            entries = [{"task": name} for name in select]
            select = None
        elif "task" in shared:
            entries = [{}]
        else:
            raise EvalError(f"no task given: pass --task NAME (see --list-tasks) or a config with "
                            f"'task:' or 'tasks:' ({where})")
    if not isinstance(entries, list) or not entries:
        raise EvalError(f"{where}: 'tasks' must be a non-empty list of task settings")

    tasks = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise EvalError(f"{where}: tasks[{i}] must be a mapping of settings, got {entry!r:.60}")
        _check_keys(entry, TASK_KEYS, where, f"key in tasks[{i}]")
        merged_entry = _merge(shared, entry, task_over)
        name = merged_entry.get("task")
        if not isinstance(name, str):
            raise EvalError(f"{where}: tasks[{i}] has no 'task' name")
        cls = task_class(name)
        tasks.append(_task_settings(cls, merged_entry, f"task {merged_entry.get('label') or name}"))
    return _run_settings({**run, **run_over}, _chosen(tasks, select, where), name)


def _chosen(tasks: list[TaskSettings], select: list[str] | None, where: str) -> list[TaskSettings]:
    """The tasks `select` names (by label or task name; None: all), each label once."""
    if select:
        chosen = [t for t in tasks if t.label in select or t.task in select]
        unknown = [s for s in select if not any(s in (t.label, t.task) for t in tasks)]
        if unknown:
            raise EvalError(f"--task {' '.join(unknown)}: not in {where} (it has "
                            f"{', '.join(t.label for t in tasks)})")
        tasks = chosen
    labels = [t.label for t in tasks]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise EvalError(f"{where}: several tasks are labelled {', '.join(duplicates)}; give each a "
                        f"distinct 'label:'")
    return tasks


def _run_settings(run: dict[str, Any], tasks: list[TaskSettings], name: str | None) -> RunSettings:
    """RunSettings from the run keys (config, then command line), checked."""
    if not run.get("model"):
        raise EvalError("no model given: pass --model or set 'model:' in the config")
    if not run.get("out") and isinstance(run["model"], str):
        run["out"] = default_out(run["model"], name or "-".join(t.label for t in tasks))
    settings = RunSettings(tasks=tasks, **run)
    _check_type(settings.model, str, "model", "run")
    _check_type(settings.out, str, "out", "run")
    if settings.device not in DEVICES:
        raise EvalError(f"device {settings.device!r}: expected one of {', '.join(DEVICES)}")
    _check_int(settings.report_examples, "report_examples", "run", minimum=0)
    if settings.dtype not in (None, "float32", "bfloat16", "float16"):
        raise EvalError(f"dtype {settings.dtype!r}: expected float32, bfloat16 or float16")
    return settings


def _merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win; `decoding` and `options` mappings are merged key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key in ("decoding", "options") and isinstance(value, dict) and isinstance(merged.get(key), dict):
                value = {**merged[key], **value}
            merged[key] = value
    return merged


def _check_counts(values: dict[str, Any], given: dict[str, Any], where: str) -> None:
    """Trials, batch size, query and demonstration counts, shots and seeds; a single shot count
    becomes a list, and seeds and trials fill in each other."""
    for key in ("trials", "batch_size"):
        if key in values:
            _check_int(values[key], key, where, minimum=1)
    for key in ("max_queries", "demo_pool_size"):
        if values.get(key) is not None:
            _check_int(values[key], key, where, minimum=1)
    _check_int(values.get("zero_shot_text_demos", 0), "zero_shot_text_demos", where, minimum=0)
    shots = values.get("shots", [0])
    if isinstance(shots, int):
        shots = [shots]
    if not isinstance(shots, list) or not shots:
        raise EvalError(f"{where}: shots must be a list of integers >= 0, got {shots!r}")
    for s in shots:
        _check_int(s, "shots", where, minimum=0)
    values["shots"] = shots
    seeds = values.get("seeds") or []
    if not isinstance(seeds, list):
        raise EvalError(f"{where}: seeds must be a list of integers, got {seeds!r}")
    for s in seeds:
        _check_int(s, "seeds", where, minimum=0)
    if seeds and "trials" in given and given["trials"] != len(seeds):
        raise EvalError(f"{where}: {values['trials']} trials but {len(seeds)} seeds; give one or the other")
    if seeds:
        values["trials"] = len(seeds)
    else:
        values["seeds"] = list(range(values.get("trials", 3)))


def _check_selection(cls, values: dict[str, Any], blind: bool, where: str) -> None:
    """How demonstrations are chosen: RICES only where the task draws from a train split, and
    never for the blind baseline."""
    if values.get("selection", "random") not in SELECTIONS:
        raise EvalError(f"{where}: selection {values['selection']!r}: expected one of {', '.join(SELECTIONS)}")
    if values.get("selection") == "rices" and not cls.uses_selection:
        raise EvalError(f"{where}: selection 'rices' does not apply: this task builds its own "
                        f"demonstrations per episode")
    if values.get("selection") == "rices" and blind:
        raise EvalError(f"{where}: the blind baseline with selection 'rices' would pass image "
                        f"content through the choice of demonstrations; use selection: random")


def _check_texts(values: dict[str, Any], where: str) -> None:
    """Templates, label, stop strings and data paths; a single stop string or data path
    becomes a list or mapping."""
    for key in ("template", "query_template", "label"):
        if values.get(key) is not None:
            _check_type(values[key], str, key, where)
    stop = values.get("stop")
    if isinstance(stop, str):
        values["stop"] = [stop]
    elif stop is not None and (not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop)):
        raise EvalError(f"{where}: stop must be a list of non-empty strings, got {stop!r}")
    data = values.get("data") or {}
    if isinstance(data, str):
        data = {"path": data}
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise EvalError(f"{where}: data must be a path or a mapping of data keys to paths, got {data!r:.80}")
    values["data"] = data


def _task_settings(cls, given: dict[str, Any], where: str) -> TaskSettings:
    for key in ("decoding", "options"):
        if given.get(key) is not None and not isinstance(given[key], dict):
            raise EvalError(f"{where}: {key} must be a mapping, got {given[key]!r:.60}")
    values = {**cls.defaults, **given}
    decoding = {**cls.defaults.get("decoding", {}), **(values.get("decoding") or {})}
    values["decoding"] = decoding
    values["options"] = cls.check_options(values.get("options") or {})
    blind = values.get("blind", False)
    _check_type(blind, bool, "blind", where)
    values.setdefault("label", cls.name + ("-blind" if blind else ""))
    _check_counts(values, given, where)
    _check_selection(cls, values, blind, where)
    _check_texts(values, where)
    values["decoding"] = decoding_options(decoding, where)
    return TaskSettings(**values)


def _check_keys(values: dict[str, Any], allowed: tuple[str, ...], where: str, what: str,
                extra: tuple[str, ...] = ()) -> None:
    for key in values:
        if key not in allowed and key not in extra:
            raise EvalError(f"{where}: unknown {what} {key!r}{did_you_mean(key, allowed + extra)}; "
                            f"expected one of {', '.join(allowed)}")


def _check_type(value: Any, kind: type, name: str, where: str) -> None:
    if not isinstance(value, kind):
        raise EvalError(f"{where}: {name} must be a {kind.__name__}, got {value!r:.60}")


def _check_int(value: Any, name: str, where: str, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise EvalError(f"{where}: {name} must be an integer >= {minimum}, got {value!r:.60}")
