"""Training beside another busy process: the shapes-world config's step rate while one
competing CPU-bound process runs, against its rate with the competitor stopped.

One `train.py fit --config configs/toy.yaml` process trains on freshly rendered shards while
this process starts and stops a competitor (a pure Python loop) in alternating phases; a
callback in the training process records the time of every step. The rate of each phase is
its step count over its length, and the row compares the medians of the busy and the quiet
phases, so that whatever else the machine runs hits both alike. The candidate uses the threads
the library chooses (frozen.threads); the reference row forces torch's default of one thread
per core (OMP_NUM_THREADS), which oversubscribes the cores as soon as anything else runs.

    python -m bench.threads              # these rows alone (about 5 minutes)
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from .common import Row, print_table

REPO = Path(__file__).resolve().parent.parent
WARMUP_STEPS = 5
PHASES = 6                # quiet, busy, quiet, ... (medians of 3 each)
PHASE_SECONDS = 20.0
SETTLE_SECONDS = 2.0      # not counted at the start of a phase


class StepClock(Callback):
    """Appends the (system-wide monotonic) time of every step end to $BENCH_STEP_TIMES."""

    def __init__(self):
        self.path = Path(os.environ["BENCH_STEP_TIMES"])
        self.times: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.times.append(time.monotonic())
        self.path.write_text(json.dumps(self.times))


def _steps_done(times_file: Path) -> list[float]:
    try:
        return json.loads(times_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def _start_training(shards: dict, out: Path, env: dict) -> subprocess.Popen:
    command = [sys.executable, "train.py", "fit", "--config", "configs/toy.yaml",
               "--data.train_shards", shards["train"], "--data.val_shards", "null",
               "--data.epoch_samples", "10000000", "--trainer.max_steps", "100000",
               "--trainer.default_root_dir", str(out), "--trainer.enable_progress_bar", "false",
               "--trainer.logger", "false", "--checkpoint.every_n_train_steps", "null",
               "--trainer.callbacks+=bench.threads.StepClock"]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def phase_rates(shards: dict, out: Path, env: dict) -> dict[bool, list[float]]:
    """Steps/s of each quiet (False) and busy (True) phase of one training run."""
    times_file = out / "times.json"
    env = env | {"BENCH_STEP_TIMES": str(times_file), "PYTHONPATH": str(REPO)}
    training = _start_training(shards, out, env)
    phases: list[tuple[bool, float, float]] = []
    try:
        while len(_steps_done(times_file)) < WARMUP_STEPS:
            if training.poll() is not None:
                raise RuntimeError(f"training run failed:\n{training.stderr.read()[-3000:]}")
            time.sleep(0.5)
        for k in range(PHASES):
            busy = k % 2 == 1
            competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            start = time.monotonic()
            time.sleep(PHASE_SECONDS)
            phases.append((busy, start + SETTLE_SECONDS, time.monotonic()))
            if competitor is not None:
                competitor.kill()
                competitor.wait()
    finally:
        os.killpg(training.pid, signal.SIGKILL)
        training.wait()
    times = _steps_done(times_file)
    rates: dict[bool, list[float]] = {False: [], True: []}
    for busy, begin, end in phases:
        rates[busy].append(sum(begin <= t < end for t in times) / (end - begin))
    return rates


def run(tmp: Path) -> list[Row]:
    from frozen.threads import suggested_threads, usable_cores
    from frozen.toy.shards import write_dataset

    shards = write_dataset(tmp / "shapes", 2000, 64, progress=False)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    cases = ((f"chosen, {suggested_threads(1)} thread(s)", env, "slowdown <= 2x"),
             (f"torch default, {usable_cores()} threads", env | {"OMP_NUM_THREADS": str(usable_cores())},
              "report"))
    rows, quiet_rates = [], []
    for name, case_env, goal in cases:
        rates = phase_rates(shards, tmp / f"run-{len(rows)}", case_env)
        quiet, busy = statistics.median(rates[False]), statistics.median(rates[True])
        quiet_rates.append(quiet)
        slowdown = quiet / busy if busy > 0 else float("inf")
        rows.append(Row(f"toy training beside a busy process, {name}", busy, quiet, "",
                        goal, slowdown, slowdown <= 2 if goal != "report" else None,
                        f"steps/s busy vs quiet; {slowdown:.1f}x slower beside it"))
    chosen, default = quiet_rates
    rows.append(Row("toy training, chosen threads vs torch default (quiet)", chosen, default, "",
                    "report", default / chosen if chosen > 0 else float("inf"),
                    note=f"steps/s; {chosen / default:.2f}x the default's rate" if default > 0 else ""))
    return rows


def main() -> None:
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(Path(tmp))
    print_table(rows)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
