"""The one few-shot loop every task runs through: shots x trials x batches of queries.

For each shot count and each trial seed the task builds its queries (complete prompts); the
queries not yet in the log are generated in batches (many prompts per `model.generate` call;
the model left-pads them), read, logged, and the trial is scored. Images are loaded (and made
black for the blind baseline) by a background thread one batch ahead of generation. On a CUDA
device generation takes the fast decode path (`static_cache=True`: a compiled one-token step,
compiled once per batch size and cache-length bucket); its greedy output is the default's.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from PIL import Image
from tqdm import tqdm

from .errors import EvalError
from .log import PredictionLog
from .queries import ImageRef, Query, Record
from .selection import Selector
from .tasks.base import Task
from .templates import prompt_text


@dataclass
class Trial:
    shots: int
    trial: int
    seed: int
    queries: int
    scores: dict[str, float]


@dataclass
class TaskResult:
    """Everything one task produced: per-trial scores, records, and queries for the report."""

    task: Task
    trials: list[Trial] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    shown: list[Query] = field(default_factory=list)   # the first queries, for thumbnails


def materialize(prompt: Sequence[Any], blind: bool, transform=None,
                loaded: dict[str, Any] | None = None) -> list[Any]:
    """Prompt items for model.generate: text as is, each image loaded (black if blind) and
    preprocessed to (3, S, S) by the model's own transform when it has one.

    `loaded` (image key -> item) shares one object per image across the prompts of a batch:
    a demonstration used by many queries is then loaded once and encoded once by the model.
    """
    loaded = {} if loaded is None else loaded
    items = []
    for item in prompt:
        if isinstance(item, ImageRef):
            if item.key not in loaded:
                loaded[item.key] = _image(item, blind, transform)
            item = loaded[item.key]
        items.append(item)
    return items


def _image(ref: ImageRef, blind: bool, transform) -> Any:
    if blind:
        image = Image.new("RGB", ref.load().size, (0, 0, 0))
    elif transform is not None and ref.path is not None:
        from frozen import ImageError

        try:
            return transform(ref.path)       # from the file: large JPEGs decode at reduced size
        except ImageError as err:
            raise EvalError(f"{err} (image {ref.key!r})") from None
    else:
        image = ref.load()
    return transform(image) if transform is not None else image            # (3, S, S) or PIL


def evaluate(model, task: Task, log: PredictionLog, selector: Selector | None,
             progress: bool = True, shown: int = 12) -> TaskResult:
    """Run every (shots, trial) of `task`, resuming from `log`; score each trial."""
    settings = task.settings
    on_cuda = getattr(getattr(model, "device", None), "type", None) == "cuda"
    # The task's stop strings; on CUDA the fast decode path (same greedy output).
    options = settings.decoding.replace(stop=task.stop_strings() or None, static_cache=on_cuda)
    transform = getattr(model, "image_transform", None)
    result = TaskResult(task)
    with ThreadPoolExecutor(max_workers=1) as loader:
        for shots in settings.shots:
            for trial, seed in enumerate(settings.seeds):
                queries = task.queries(shots, seed, selector)
                _check_ids(task, queries)
                if trial == 0 and not result.shown:
                    result.shown = queries[:shown]
                pending = [q for q in queries if (shots, trial, q.id) not in log]
                desc = f"{settings.label} {shots}-shot trial {trial}"
                # A bar on a terminal; in a log file, one plain line per trial (below).
                bar = tqdm(total=len(queries), initial=len(queries) - len(pending), unit="query",
                           desc=desc, disable=not progress or not sys.stderr.isatty())
                started = time.perf_counter()
                batches = [pending[i:i + settings.batch_size] for i in range(0, len(pending), settings.batch_size)]
                for batch, prompts in _prefetch(loader, batches, settings.blind, transform):
                    try:
                        outputs = model.generate(prompts, options)
                    except ValueError as err:      # e.g. a prompt longer than the context window
                        raise EvalError(f"{settings.label}, {shots} shots: generation failed: {err}") from None
                    if len(outputs) != len(batch):
                        raise EvalError(f"model.generate returned {len(outputs)} outputs for {len(batch)} prompts")
                    log.append(_record(task, q, shots, trial, seed, out) for q, out in zip(batch, outputs, strict=True))
                    bar.update(len(batch))
                bar.close()
                records = [log.get((shots, trial, q.id)) for q in queries]
                result.records += records
                result.trials.append(Trial(shots, trial, seed, len(records), task.score(records)))
                if progress and not sys.stderr.isatty():
                    print(f"{desc}: {len(queries)} queries ({len(pending)} new) in "
                          f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return result


def _prefetch(loader: ThreadPoolExecutor, batches: list[list[Query]], blind: bool,
              transform) -> Iterator[tuple[list[Query], list[list[Any]]]]:
    """Yield (batch, materialized prompts), loading the next batch while this one generates."""

    def load(batch: list[Query]) -> list[list[Any]]:
        loaded: dict[str, Any] = {}
        return [materialize(q.prompt, blind, transform, loaded) for q in batch]

    future = loader.submit(load, batches[0]) if batches else None
    for i, batch in enumerate(batches):
        prompts = future.result()
        future = loader.submit(load, batches[i + 1]) if i + 1 < len(batches) else None
        yield batch, prompts


def _record(task: Task, query: Query, shots: int, trial: int, seed: int, output: str) -> Record:
    text, keys = prompt_text(query.prompt)
    return Record(shots=shots, trial=trial, seed=seed, id=query.id, prompt=text, images=keys,
                  output=output, prediction=task.read(output), references=list(query.references),
                  group=query.group, meta=query.meta)


def _check_ids(task: Task, queries: list[Query]) -> None:
    ids = [q.id for q in queries]
    if len(set(ids)) != len(ids):
        raise EvalError(f"task {task.name}: query ids repeat within a trial")
