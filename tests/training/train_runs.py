"""Helpers for tiny train.py runs in the training tests: arguments, the probe callback's
arguments, running in process or in a subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
TINY_VISION = '{"layers": [1, 1, 1, 1], "width": 8, "image_size": 32}'


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


def probe_args(out: Path, **options) -> list[str]:
    args = ["--trainer.callbacks+=run_probe.Probe", "--trainer.callbacks.out", str(out)]
    for key, value in options.items():
        args += [f"--trainer.callbacks.{key}", str(value)]
    return args


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env
