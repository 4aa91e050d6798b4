"""The outputs of a run: results.json (every score, prediction, prompt and setting) and
report.html (a summary table of every task, then per task a score table, a plot against the
number of shots where there are several, and example queries with thumbnails; for fast
binding, with the demonstrations that define the names).

results.json:
    {"settings": {...}, "model_fingerprint": "...", "created": "...", "versions": {...},
     "tasks": {label: {"task", "description", "metrics", "blind", "notes",
                       "scores": {"<shots>": {"mean": {metric: v}, "std": {...},
                                              "trials": [{"trial", "seed", "queries", "scores"}]}},
                       "predictions": [{"shots", "trial", "seed", "id", "prompt", "images",
                                        "output", "prediction", "references", "group", "meta"}]}}}
Scores are percent; std is over trials (numpy's population std, as OpenFlamingo reports).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from .loop import TaskResult
from .plot import line_plot
from .settings import RunSettings

THUMBNAIL = 128


def aggregate(result: TaskResult) -> dict[str, Any]:
    """Per shot count: mean and std of each metric over trials, and the trials themselves."""
    scores: dict[str, Any] = {}
    for shots in result.task.settings.shots:
        trials = [t for t in result.trials if t.shots == shots]
        names = list(dict.fromkeys(name for t in trials for name in t.scores))
        values = {n: [t.scores[n] for t in trials if n in t.scores] for n in names}
        scores[str(shots)] = {
            "mean": {n: float(np.mean(v)) for n, v in values.items()},
            "std": {n: float(np.std(v)) for n, v in values.items()},
            "trials": [{"trial": t.trial, "seed": t.seed, "queries": t.queries, "scores": t.scores} for t in trials],
        }
    return scores


def results_json(settings: RunSettings, results: dict[str, TaskResult], fingerprint: str) -> dict[str, Any]:
    import torch
    import transformers

    return {
        "settings": dataclasses.asdict(settings),
        "model_fingerprint": fingerprint,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "tasks": {
            label: {
                "task": r.task.name,
                "description": r.task.description,
                "metrics": list(r.task.metrics),
                "blind": r.task.settings.blind,
                "stop": r.task.stop_strings(),
                "notes": r.task.notes,
                "scores": aggregate(r),
                "predictions": [rec.to_json() for rec in r.records],
            }
            for label, r in results.items()
        },
    }


def write_json(path: Path, data: Any) -> None:
    """Write atomically (a reader never sees half a file)."""
    from frozen.atomic import write_text        # frozen loads only once something is written

    write_text(path, json.dumps(data, indent=1, ensure_ascii=False))


# ---- report.html ---------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em;
       color: #222; }
.wide { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; }
td.text, th.text { text-align: left; max-width: 320px; overflow-wrap: anywhere; }
.prompt img { width: 40px; height: 40px; vertical-align: middle; margin: 1px; }
.prompt span { white-space: pre-wrap; font-family: monospace; font-size: 12px; }
.examples td { font-size: 13px; }
.examples td:first-child { text-align: center; }
.examples img { width: 96px; height: 96px; object-fit: contain; background: #eee; }
.badge { background: #333; color: #fff; border-radius: 4px; padding: 1px 6px; font-size: 12px; }
.note { color: #8a5a00; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
pre { background: #f6f6f6; padding: 8px; white-space: pre-wrap; }
.ok { color: #17702a; } .bad { color: #a11; }
"""


def thumbnail(image) -> str:
    """A JPEG data URI of the image, at most THUMBNAIL pixels on a side."""
    picture = image.copy()
    picture.thumbnail((THUMBNAIL, THUMBNAIL))
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _e(value: Any) -> str:
    return html.escape(str(value))


def _score_table(result: TaskResult, scores: dict[str, Any]) -> str:
    """Metrics down, shot counts across: as wide as the number of shot counts, however many
    per-group metrics a task has."""
    metrics = list(dict.fromkeys(m for s in scores.values() for m in s["mean"]))
    head = "".join(f"<th>{_e(shots)}-shot</th>" for shots in scores)
    trials = "".join(f"<td>{len(e['trials'])}</td>" for e in scores.values())
    queries = "".join(f"<td>{e['trials'][0]['queries'] if e['trials'] else 0}</td>" for e in scores.values())
    rows = [f'<tr><th class="text">trials</th>{trials}</tr>', f'<tr><th class="text">queries</th>{queries}</tr>']
    for m in metrics:
        cells = "".join(f"<td>{e['mean'][m]:.2f} ± {e['std'][m]:.2f}</td>" if m in e["mean"] else "<td>-</td>"
                        for e in scores.values())
        rows.append(f'<tr><th class="text">{_e(m)}</th>{cells}</tr>')
    return (f'<div class="wide"><table class="scores"><tr><th class="text">metric</th>{head}</tr>'
            + "".join(rows) + "</table></div>")


def _summary_table(results: dict[str, TaskResult]) -> str:
    """Every task's headline metrics at every shot count, one row per task and shot count."""
    rows = []
    for label, result in results.items():
        scores = aggregate(result)
        for shots, entry in scores.items():
            cells = ", ".join(f"{m} {entry['mean'][m]:.2f} ± {entry['std'][m]:.2f}"
                              for m in result.task.metrics if m in entry["mean"])
            blind = " (blind)" if result.task.settings.blind else ""
            rows.append(f'<tr><td class="text"><a href="#{_e(label)}">{_e(label)}</a>{blind}</td>'
                        f'<td>{_e(shots)}</td><td>{len(entry["trials"])}</td>'
                        f'<td class="text">{_e(cells) or "-"}</td></tr>')
    return ('<div class="wide"><table class="summary"><tr><th class="text">task</th><th>shots</th>'
            '<th>trials</th><th class="text">headline scores (mean ± std)</th></tr>'
            + "".join(rows) + "</table></div>")


def _plots(scores: dict[str, Any], headline: tuple[str, ...]) -> str:
    """One plot per headline metric; its per-group variants (metric[group]) share its plot.
    None with a single shot count (a plot of one point says nothing a table does not)."""
    if len(scores) < 2:
        return ""
    names = list(dict.fromkeys(m for s in scores.values() for m in s["mean"]))
    bases = [b for b in dict.fromkeys(n.split("[", 1)[0] for n in names) if b in headline]
    svgs = []
    for base in bases:
        series = {}
        for name in names:
            if name == base or name.startswith(base + "["):
                label = "all" if name == base else name[len(base) + 1:-1]
                series[label] = [(int(shots), entry["mean"][name], entry["std"][name])
                                 for shots, entry in scores.items() if name in entry["mean"]]
        if len(series) == 1:
            series = {base: next(iter(series.values()))}
        svgs.append(line_plot(base, series))
    return '<div class="plots">' + "".join(svgs) + "</div>"


def _prompt_html(query) -> str:
    """The query's whole prompt: small thumbnails for its images, its text as written."""
    from .queries import ImageRef

    parts = []
    for item in query.prompt:
        if isinstance(item, ImageRef):
            try:
                parts.append(f'<img src="{thumbnail(item.load())}" alt="{_e(item.key)}">')
            except Exception as err:  # a report must not fail on one unreadable picture
                parts.append(f"(no image: {_e(err)})")
        else:
            parts.append(f"<span>{_e(item)}</span>")
    return f'<div class="prompt">{"".join(parts)}</div>'


def _examples(result: TaskResult) -> str:
    if not result.shown:
        return ""
    shots = result.task.settings.shots
    with_prompt = result.task.prompt_defines_answer
    by_key = {(r.shots, r.id): r for r in result.records if r.trial == 0}
    head = "".join(f'<th class="text">{s}-shot</th>' for s in shots)
    rows = []
    for query in result.shown:
        try:
            image = f'<img src="{thumbnail(query.image.load())}" alt="{_e(query.id)}">'
        except Exception as err:  # a report must not fail on one unreadable picture
            image = f"(no image: {_e(err)})"
        refs = "<br>".join(_e(r) for r in query.references[:5])
        cells = []
        for s in shots:
            record = by_key.get((s, query.id))
            if record is None:
                cells.append('<td class="text">-</td>')
                continue
            exact = record.prediction.strip().lower() in {r.strip().lower() for r in record.references}
            mark = ' class="ok"' if exact else ""
            cells.append(f'<td class="text"><span{mark}>{_e(record.prediction) or "(empty)"}</span></td>')
        prompt = f'<td class="text">{_prompt_html(query)}</td>' if with_prompt else ""
        rows.append(f'<tr><td>{image}<br>{_e(query.id)}</td>{prompt}<td class="text">{refs}</td>'
                    f'{"".join(cells)}</tr>')
    seen = "image (the model saw it black)" if result.task.settings.blind else "image"
    prompt_head = f'<th class="text">prompt ({shots[0]}-shot: the demonstrations define the names)</th>' \
        if with_prompt else ""
    return (f'<h3>Examples (trial 0)</h3><div class="wide"><table class="examples"><tr><th>{seen}</th>'
            f'{prompt_head}<th class="text">references</th>{head}</tr>' + "".join(rows) + "</table></div>")


def _task_section(label: str, result: TaskResult) -> str:
    settings = result.task.settings
    scores = aggregate(result)
    badge = ' <span class="badge">blind: every image black</span>' if settings.blind else ""
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in result.task.notes)
    described = json.dumps(dataclasses.asdict(settings), indent=1, ensure_ascii=False)
    example_prompt = ""
    if result.records:
        longest = max(result.records, key=lambda r: r.shots)     # the first one at the most shots
        example_prompt = (f"<details><summary>an exact prompt ({longest.shots}-shot, query {_e(longest.id)})"
                          f"</summary><pre>{_e(longest.prompt)}</pre></details>")
    return (f'<section id="{_e(label)}"><h2>{_e(label)}{badge}</h2><p>{_e(result.task.description)}</p>'
            f"{_score_table(result, scores)}{_plots(scores, result.task.metrics)}{notes}"
            f"<details><summary>settings</summary><pre>{_e(described)}</pre></details>{example_prompt}"
            f"{_examples(result)}</section>")


def report_html(settings: RunSettings, results: dict[str, TaskResult]) -> str:
    created = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    sections = "".join(_task_section(label, r) for label, r in results.items())
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Evaluation: {_e(settings.model)}</title>'
            f"<style>{STYLE}</style></head><body><h1>Evaluation report</h1>"
            f"<p>model <code>{_e(settings.model)}</code>, {created}. Scores in percent, mean ± std over "
            f"trials.</p><h2>Summary</h2>{_summary_table(results)}{sections}</body></html>")
