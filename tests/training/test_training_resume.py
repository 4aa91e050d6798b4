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


# A script for a fresh process: save a small checkpoint, then a large one into the same folder.
_SAVE_TWICE = """
import sys, torch
from pathlib import Path
from frozen.training.checkpoint_io import CheckpointWriteError, atomic_torch_save
path = Path(sys.argv[1]) / "last.ckpt"
if sys.argv[2] == "small":
    atomic_torch_save({"step": 1, "w": torch.ones(1000)}, path)
try:
    atomic_torch_save({"step": 2, "w": torch.zeros(2_000_000)}, path)     # 8 MB
except CheckpointWriteError as err:
    print(err)
"""


def _unshare_works() -> bool:
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


def _check_failed_write(out: str, folder, expect: str) -> None:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out                                  # one line, no traceback
    assert lines[0].startswith(f"cannot write checkpoint '{folder}/last.ckpt': {expect}"), lines[0]
    assert "any earlier file at that path is unchanged and no temporary file was left" in lines[0]


@pytest.mark.skipif(not _unshare_works(), reason="needs unprivileged mount namespaces (unshare -rm)")
def test_full_and_read_only_disks_give_a_one_line_error(tmp_path):
    """A real 4 MB tmpfs: the 8 MB checkpoint does not fit; then the same tmpfs read-only."""
    script = tmp_path / "save.py"
    script.write_text(_SAVE_TWICE)
    mount = tmp_path / "disk"
    mount.mkdir()
    shell = (f"mount -t tmpfs -o size=4m tmpfs {mount} && {sys.executable} {script} {mount} small "
             f"&& ls -A {mount} && python -c 'import torch; print(torch.load(\"{mount}/last.ckpt\")[\"step\"])' "
             f"&& mount -o remount,ro {mount} && {sys.executable} {script} {mount} none")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", shell.replace("python -c", f"{sys.executable} -c")],
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    full, listing, step, read_only = done.stdout.strip().split("\n")
    _check_failed_write(full, mount, "no space left on device: the checkpoint needs about 8.0 MB, ")
    assert "MB are free on that filesystem" in full
    assert listing == "last.ckpt" and step == "1"        # the good checkpoint kept, nothing else
    _check_failed_write(read_only, mount, "the filesystem is read-only")


def test_a_file_size_limit_gives_a_one_line_error(tmp_path):
    import resource

    script = tmp_path / "save.py"
    script.write_text(_SAVE_TWICE)

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # fail the write instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))

    done = subprocess.run([sys.executable, str(script), str(tmp_path), "small"], env=subprocess_env(),
                          capture_output=True, text=True, timeout=120, preexec_fn=limit_file_size)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_failed_write(done.stdout, tmp_path, "file too large: the checkpoint needs about 8.0 MB")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "save.py"]
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["step"] == 1
