"""Two-process CPU DDP (gloo): the run completes, the ranks see different samples, and a NaN
loss on one rank is skipped on both."""

from __future__ import annotations

import math
import subprocess
import sys

from safetensors.torch import load_file

import run_probe as probes
from train_runs import ROOT, fit_args, probe_args, subprocess_env


def test_two_process_ddp(tiny_lm, good_shards, tmp_path):
    args = fit_args(tiny_lm, good_shards, tmp_path / "run", 6,
                    "--trainer.strategy", "ddp", "--trainer.devices", "2",
                    "--data.num_workers", "1", "--data.resampled", "false",
                    "--data.shuffle_buffer", "0", "--data.epoch_samples", "96",
                    *probe_args(tmp_path / "probe", nan_at_step=2, nan_rank=1))
    try:
        done = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path,
                              env=subprocess_env(), capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as err:     # show where the ranks were when it stopped
        stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else err.stderr
        raise AssertionError(f"DDP run did not finish in 300 s; its stderr ends:\n"
                             f"{(stderr or '')[-4000:]}") from None
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = [probes.read(tmp_path / "probe", rank) for rank in (0, 1)]
    keys = [[k for r in records for k in r["keys"]] for records in ranks]
    assert len(keys[0]) == len(set(keys[0])) == 48 and len(keys[1]) == 48
    assert not set(keys[0]) & set(keys[1])               # an exact split: disjoint samples
    # Step 3 (global_step 2 at its start) gave NaN on rank 1 only; both ranks dropped it.
    assert [math.isnan(r["loss"]) for r in ranks[1]] == [False, False, True, False, False, False]
    assert not any(math.isnan(r["loss"]) for r in ranks[0])
    for records in ranks:
        assert [r["skipped_steps"] for r in records] == [0, 0, 1, 1, 1, 1]
    assert "non-finite loss on 1 rank(s)" in done.stderr
    weights = load_file(tmp_path / "run" / "inference" / "model.safetensors")
    assert all(t.isfinite().all() for t in weights.values())       # the NaN never reached them
