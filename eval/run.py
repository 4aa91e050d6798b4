"""One evaluation run: load the model, evaluate each task through the shared loop, write outputs.

<out>/
    results.json                 every score (per shots and trial, mean and std), prediction,
                                 exact prompt and setting; rewritten after each task
    report.html                  tables, plots and example thumbnails
    <label>/predictions.jsonl    the resumable log of finished queries
    <label>/run.json             the settings the log was made with
    <label>/answers/<k>shot_trial<t>.json   official-format results (COCO captions, VQA answers)
    cache/                       RICES image features (or --cache-dir)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import EvalError
from .features import FeatureCache, model_fingerprint
from .log import PredictionLog
from .loop import TaskResult, evaluate
from .report import aggregate, report_html, results_json, write_json
from .selection import make_selector
from .settings import RunSettings
from .tasks import task_class


def load_model(path: str, device: str, lm: str | None = None, dtype: str | None = None):
    """FrozenModel.from_pretrained(path) on `device`, in eval mode; problems become EvalError.

    lm: the frozen LM's folder when it is not where the model was trained; dtype: the LM's
    dtype at load time (e.g. bfloat16 on a GPU)."""
    import torch

    from frozen import FrozenModel
    from frozen.threads import set_cpu_threads

    folder = Path(path)
    if not folder.is_dir():
        raise EvalError(f"model folder not found: {path!r} (pass the folder save_pretrained wrote)")
    if not (folder / "frozen_config.json").is_file():
        raise EvalError(f"{path!r} is not a Frozen model folder: it has no frozen_config.json")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        set_cpu_threads()                   # stays fast beside other busy processes
    try:
        model = FrozenModel.from_pretrained(str(folder), lm=lm, **({"dtype": dtype} if dtype else {}))
        return model.to(device).eval()
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise EvalError(f"cannot load the model from {path!r}: {err}") from None


def run(settings: RunSettings, model: Any = None) -> dict[str, TaskResult]:
    """Evaluate every task of `settings` (with `model`, or the one at settings.model)."""
    tasks = [task_class(t.task)(t) for t in settings.tasks]
    for task in tasks:                                           # data problems surface before
        task.prepare()                                           # a large model is loaded
    if model is None:                                            # a bad model folder is named
        model = load_model(settings.model, settings.device, settings.lm, settings.dtype)
    out = Path(settings.out)                                     # before any output is written
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = model_fingerprint(model)
    lm_fingerprint = model.lm_fingerprint() if hasattr(model, "lm_fingerprint") else None
    features = None
    if any(t.selection == "rices" for t in settings.tasks):
        cache = Path(settings.cache_dir) if settings.cache_dir else out / "cache"
        features = FeatureCache(model, cache, progress=settings.progress)
    results: dict[str, TaskResult] = {}
    for task in tasks:
        label = task.settings.label
        header = {"model_fingerprint": fingerprint, "lm_fingerprint": lm_fingerprint,
                  "settings": task.settings.fingerprint()}
        log = PredictionLog(out / label, header, restart=settings.restart)
        selector = make_selector(task.settings.selection, features) if task.uses_selection else None
        result = evaluate(model, task, log, selector, progress=settings.progress,
                          shown=settings.report_examples)
        _write_exports(out / label / "answers", result)
        results[label] = result
        write_json(out / "results.json", results_json(settings, results, fingerprint))
    from frozen.atomic import write_text

    write_text(out / "report.html", report_html(settings, results))
    return results


def _write_exports(folder: Path, result: TaskResult) -> None:
    for trial in result.trials:
        records = [r for r in result.records if r.shots == trial.shots and r.trial == trial.trial]
        exported = result.task.export(records)
        if exported is not None:
            folder.mkdir(parents=True, exist_ok=True)
            write_json(folder / f"{trial.shots}shot_trial{trial.trial}.json", exported)


def summary(results: dict[str, TaskResult]) -> str:
    """A plain-text table of the headline metrics (mean +- std over trials) per task and shots."""
    lines = []
    for label, result in results.items():
        for shots, entry in aggregate(result).items():
            shown = [m for m in result.task.metrics if m in entry["mean"]]
            cells = ", ".join(f"{m} {entry['mean'][m]:.2f} ± {entry['std'][m]:.2f}" for m in shown)
            lines.append(f"{label:24s} {shots:>3s}-shot  {cells}")
    return "\n".join(lines)

