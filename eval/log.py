"""The resumable log of finished queries: <out>/<task label>/predictions.jsonl.

Each finished query is one JSON line, written and flushed to disk batch by batch, so a killed
run picks up where it stopped: queries already in the log are not generated again. A torn last
line (the process died mid-write) is dropped. Next to the log, run.json holds the settings that
decide the outputs; resuming with different settings is refused, naming what changed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

from .errors import EvalError
from .queries import Record

Key = tuple[int, int, str]  # (shots, trial, query id)


class PredictionLog:
    """Finished queries of one task, keyed by (shots, trial, query id)."""

    def __init__(self, folder: Path, header: dict[str, Any], restart: bool = False):
        self.folder = Path(folder)
        self.path = self.folder / "predictions.jsonl"
        run_file = self.folder / "run.json"
        if restart and self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        header = json.loads(json.dumps(header))      # as it reads back from disk
        if run_file.is_file() and self.path.is_file():
            previous = json.loads(run_file.read_text(encoding="utf-8"))
            changed = _differences(previous, header)
            if changed:
                raise EvalError(f"{self.folder} holds predictions made with other settings "
                                f"({'; '.join(changed[:5])}); pass --restart to discard them, "
                                f"or choose another --out")
        from frozen.atomic import write_text     # frozen loads only once something is written

        write_text(run_file, json.dumps(header, indent=2))
        self.records: dict[Key, Record] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        raw = self.path.read_bytes()
        end = raw.rfind(b"\n") + 1
        if end < len(raw):                           # a torn last line: cut it off
            with open(self.path, "r+b") as handle:
                handle.truncate(end)
        for number, line in enumerate(raw[:end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = Record.from_json(json.loads(line))
            except (json.JSONDecodeError, TypeError, KeyError) as err:
                raise EvalError(f"{self.path}: line {number} is not a prediction record ({err}); "
                                f"delete the file or pass --restart") from None
            self.records[(record.shots, record.trial, record.id)] = record

    def __contains__(self, key: Key) -> bool:
        return key in self.records

    def get(self, key: Key) -> Record:
        return self.records[key]

    def append(self, records: Iterable[Record]) -> None:
        records = list(records)
        with open(self.path, "a", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        for record in records:
            self.records[(record.shots, record.trial, record.id)] = record


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """'key: old -> new' for each leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    if old != new:
        return [f"{prefix.rstrip('.')}: {old!r:.40} -> {new!r:.40}"]
    return []
