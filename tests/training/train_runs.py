"""Helpers for tiny train.py runs in the training tests: arguments, the probe callback's
arguments, running in process or in a subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
TINY_VISION = '{"layers": [1, 1, 1, 1], "width": 8, "image_size": 32}'

# The two-process runs (DDP, and the sharded strategy compared with it): 6 steps over an exact
# split of the shards, gradients clipped hard, rank 1's loss NaN at the third step.
TWO_RANKS = ("--trainer.devices", "2", "--data.num_workers", "1", "--data.resampled", "false",
             "--data.shuffle_buffer", "0", "--data.epoch_samples", "96",
             "--trainer.gradient_clip_val", "0.05")


def fit_args(lm: str, train_shards: str, root: Path, steps: int, *extra: str) -> list[str]:
    """train.py arguments for a tiny CPU run."""
    return ["fit",
            "--model.frozen.lm", lm, "--model.frozen.vision", TINY_VISION,
            "--model.frozen.vision_embed_dim", "16", "--model.warmup_steps", "2",
            "--model.lr", "3e-3",
            "--data.train_shards", train_shards, "--data.batch_size", "8",
            "--data.num_workers", "0", "--data.epoch_samples", "400",
            "--data.shuffle_buffer", "16",
            "--trainer.accelerator", "cpu", "--trainer.devices", "1",
            "--trainer.max_steps", str(steps), "--trainer.default_root_dir", str(root),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.logger", "false", "--trainer.log_every_n_steps", "1",
            *extra]


def run_cli(args: list[str]):
    """train.main(args) with sys.argv cleared (LightningCLI warns when both are given)."""
    from unittest import mock

    import train

    with mock.patch.object(sys, "argv", ["train.py"]):
        return train.main(args)


def two_rank_args(tiny_lm: str, shards_: str, root: Path, probe: Path, *extra: str,
                  **probe_options) -> list[str]:
    return fit_args(tiny_lm, shards_, root, 6, *TWO_RANKS,
                    *probe_args(probe, nan_at_step=2, nan_rank=1, **probe_options), *extra)


def probe_args(out: Path, **options) -> list[str]:
    args = ["--trainer.callbacks+=run_probe.Probe", "--trainer.callbacks.out", str(out)]
    for key, value in options.items():
        args += [f"--trainer.callbacks.{key}", str(value)]
    return args


def run_train(args: list[str], cwd: Path, timeout: float = 300, **kwargs):
    """train.py in a subprocess (its own process group); on a timeout the error shows its stderr."""
    import subprocess

    try:
        return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd,
                              env=subprocess_env(), capture_output=True, text=True,
                              timeout=timeout, start_new_session=True, **kwargs)
    except subprocess.TimeoutExpired as err:     # show where the ranks were when it stopped
        stderr = err.stderr
        stderr = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
        raise AssertionError(f"train.py did not finish in {timeout} s; its stderr ends:\n"
                             f"{(stderr or '')[-4000:]}") from None


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env
