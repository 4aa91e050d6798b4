"""Training beside another busy process: the shapes-world config's step rate with one competing
CPU-bound process against the same run on an otherwise idle machine.

Each run is `train.py fit --config configs/toy.yaml` in its own process on freshly rendered
shards; a callback times the steps after a warmup. The candidate uses the threads the library
chooses (frozen.threads); the reference row forces torch's default (one thread per core, via
OMP_NUM_THREADS), which oversubscribes the cores as soon as anything else runs.

    python -m bench.threads              # this row alone
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from .common import Row, print_table

REPO = Path(__file__).resolve().parent.parent
WARMUP_STEPS = 5


class StepClock(Callback):
    """Records the time of every training step end to $BENCH_STEP_TIMES; stops the run once
    `BENCH_STEP_SECONDS` have passed after the warmup (slow runs need not finish)."""

    def __init__(self):
        self.times: list[float] = []
        self.path = os.environ["BENCH_STEP_TIMES"]
        self.budget = float(os.environ.get("BENCH_STEP_SECONDS", "60"))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.times.append(time.perf_counter())
        if len(self.times) > WARMUP_STEPS and self.times[-1] - self.times[WARMUP_STEPS - 1] > self.budget:
            trainer.should_stop = True
        Path(self.path).write_text(json.dumps(self.times))


def busy_process() -> subprocess.Popen:
    """One CPU-bound process (a pure Python loop), as another user's job would be."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def steps_per_second(shards: dict, out: Path, steps: int, env: dict, busy: bool) -> float:
    times_file = out / "times.json"
    command = [sys.executable, "train.py", "fit", "--config", "configs/toy.yaml",
               "--data.train_shards", shards["train"], "--data.val_shards", "null",
               "--trainer.max_steps", str(steps), "--trainer.default_root_dir", str(out),
               "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
               "--checkpoint.every_n_train_steps", "null", "--export.dirpath", str(out / "inference"),
               "--trainer.callbacks+=bench.threads.StepClock"]
    env = env | {"BENCH_STEP_TIMES": str(times_file), "PYTHONPATH": str(REPO)}
    competitor = busy_process() if busy else None
    try:
        subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    except subprocess.CalledProcessError as err:
        raise RuntimeError(f"training run failed:\n{err.stderr[-3000:]}") from None
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    times = json.loads(times_file.read_text())[WARMUP_STEPS - 1:]
    return (len(times) - 1) / (times[-1] - times[0])


def run(tmp: Path, steps: int = 40) -> list[Row]:
    from frozen.threads import suggested_threads, usable_cores
    from frozen.toy.shards import write_dataset

    shards = write_dataset(tmp / "shapes", 2000, 64, progress=False)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    default = env | {"OMP_NUM_THREADS": str(usable_cores())}
    rows = []
    for name, run_env in ((f"chosen: {suggested_threads(1)} thread(s)", env),
                          (f"torch default: {usable_cores()} threads", default)):
        rate = {busy: steps_per_second(shards, tmp / f"run-{len(rows)}-{busy}", steps, run_env, busy)
                for busy in (False, True)}
        rows.append(Row(f"toy training, 1 busy process vs idle (steps/s), {name}",
                        rate[True], rate[False], "",
                        "slowdown <= 2x" if not rows else "report", rate[False] / rate[True],
                        rate[False] / rate[True] <= 2 if not rows else None,
                        f"{rate[False] / rate[True]:.1f}x slower beside it"))
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(Path(tmp))
    print_table(rows)


if __name__ == "__main__":
    main()
