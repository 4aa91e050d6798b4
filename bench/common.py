"""Timing and reporting shared by every benchmark: medians of repeats, one table of ratios."""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path
from typing import Callable

SHAPES_LM = Path(__file__).resolve().parent.parent / "frozen" / "toy" / "assets" / "shapes-lm"


@dataclasses.dataclass
class Row:
    """One line of the report: a measured figure against its same-run baseline."""

    name: str
    candidate: float
    baseline: float
    unit: str
    goal: str
    ratio: float | None = None
    passed: bool | None = None
    note: str = ""


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Time several functions alternately (A B A B ...) so machine noise hits both alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def alternated(runs: dict, repeats: int, fewer: dict[str, int] | None = None) -> tuple[dict, dict]:
    """Median wall and CPU seconds of each run, the runs taking turns (A B C A B C ...) so that
    the load of a shared machine falls on all alike; `fewer` caps the repeats of slow runs.
    CPU time (this process's) is less disturbed by other processes than wall time."""
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(repeats):
        for name, fn in runs.items():
            if r >= (fewer or {}).get(name, repeats):
                continue
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return ({k: statistics.median(v) for k, v in wall.items()},
            {k: statistics.median(v) for k, v in cpu.items()})


def bench_lm_dir(tmp: Path) -> str:
    """The shapes-world LM when it is present, else a tiny random Llama."""
    if (SHAPES_LM / "config.json").is_file():
        return str(SHAPES_LM)
    from frozen.testing import make_tiny_lm_dir

    return make_tiny_lm_dir(tmp, "llama")


def print_table(rows: list[Row]) -> None:
    header = f"{'benchmark':<52} {'candidate':>12} {'baseline':>12} {'ratio':>7}  goal"
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
        verdict = "" if r.passed is None else ("  ok" if r.passed else "  MISSED")
        print(f"{r.name:<52} {r.candidate:>10.4g}{r.unit:>2} {r.baseline:>10.4g}{r.unit:>2} "
              f"{ratio:>7}  {r.goal}{verdict}{'  ' + r.note if r.note else ''}")
