"""A run killed mid-way (while writing a checkpoint) resumes from last.ckpt to the same step
and schedule as an uninterrupted run; checkpoint files are never left half-written."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import torch

import run_probe as probes
from train_runs import ROOT, fit_args, probe_args, run_cli, subprocess_env
from frozen.training.checkpoint_io import atomic_torch_save


def test_killed_run_resumes_at_the_same_step_and_schedule(tiny_lm, good_shards, tmp_path):
    run = lambda root, *extra: fit_args(tiny_lm, good_shards, root, 30, "--model.warmup_steps",
                                        "5", "--checkpoint.every_n_train_steps", "5", *extra)
    killed = subprocess.run(
        [sys.executable, str(ROOT / "train.py"),
         *run(tmp_path / "run", *probe_args(tmp_path / "killed", kill_in_save_at_step=15))],
        cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    folder = tmp_path / "run" / "checkpoints"
    # Killed half-way through writing step 15's checkpoint: the files there are complete
    # and last.ckpt is still step 10's.
    names = sorted(p.name for p in folder.glob("*.ckpt"))
    assert names == ["epoch=0-step=10.ckpt", "last.ckpt"], names
    for name in names:
        torch.load(folder / name, weights_only=True)
    assert torch.load(folder / "last.ckpt", weights_only=True)["global_step"] == 10
    assert len(list(folder.glob(".epoch=0-step=15.ckpt.tmp-*"))) == 1    # the cut write

    resumed = run_cli(run(tmp_path / "run", "--ckpt_path", "last",
                          *probe_args(tmp_path / "resumed")))
    straight = run_cli(run(tmp_path / "straight", *probe_args(tmp_path / "straight-probe")))
    assert resumed.trainer.global_step == straight.trainer.global_step == 30
    after = probes.read(tmp_path / "resumed")
    assert [r["step"] for r in after] == list(range(11, 31))
    reference = {r["step"]: r["lr"] for r in probes.read(tmp_path / "straight-probe")}
    assert all(r["lr"] == pytest.approx(reference[r["step"]], rel=1e-12) for r in after)
    assert torch.load(folder / "last.ckpt", weights_only=True)["global_step"] == 30
    assert not list(folder.glob(".*.tmp-*"))            # the resumed run cleared it


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"v": 1}, path)

    def failing_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError):
        atomic_torch_save({"v": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
