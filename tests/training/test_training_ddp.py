"""Two-process CPU DDP (gloo): the run completes, the ranks see different samples, and a NaN
loss on one rank is skipped on both; a stalled data worker ends the run with its error; many
short fits of the toy configs on tiny shards, with fresh data workers each, all finish."""

from __future__ import annotations

import json
import math
import random
import socket
import subprocess
import sys

from safetensors.torch import load_file

import caption_shards as shards
import run_probe as probes
from train_runs import ROOT, fit_args, subprocess_env


def test_two_process_ddp(ddp_run):
    run, probe, done = ddp_run
    ranks = [probes.read(probe, rank) for rank in (0, 1)]
    keys = [[k for r in records for k in r["keys"]] for records in ranks]
    assert len(keys[0]) == len(set(keys[0])) == 48 and len(keys[1]) == 48
    assert not set(keys[0]) & set(keys[1])               # an exact split: disjoint samples
    # Step 3 (global_step 2 at its start) gave NaN on rank 1 only; both ranks dropped it.
    assert [math.isnan(r["loss"]) for r in ranks[1]] == [False, False, True, False, False, False]
    assert not any(math.isnan(r["loss"]) for r in ranks[0])
    for records in ranks:
        assert [r["skipped_steps"] for r in records] == [0, 0, 1, 1, 1, 1]
    assert "non-finite loss on 1 rank(s)" in done.stderr
    weights = load_file(run / "inference" / "model.safetensors")
    assert all(t.isfinite().all() for t in weights.values())       # the NaN never reached them


def test_a_stalled_data_worker_brings_the_run_down(tiny_lm, good_shards, tmp_path):
    """Rank 0's only shard is a pipe that gives nothing for 60 s: its worker stalls, the rank
    stops with the data-loader timeout, and the whole run ends with that error (rank 1, waiting
    in the step's all-reduce, sees its peer gone) instead of waiting forever."""
    first = good_shards.replace("{00000..00003}", "00000")
    args = fit_args(tiny_lm, first, tmp_path / "run", 4,
                    "--data.train_shards", f"['pipe:exec sleep 60 2>/dev/null', {first}]",
                    "--trainer.strategy", "ddp", "--trainer.devices", "2",
                    "--data.num_workers", "1", "--data.resampled", "false",
                    "--data.shuffle_buffer", "0", "--data.worker_timeout", "5")
    try:
        done = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path,
                              env=subprocess_env(), capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as err:
        stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else err.stderr
        raise AssertionError(f"the stalled run was still up after 240 s; its stderr ends:\n"
                             f"{(stderr or '')[-4000:]}") from None
    assert done.returncode != 0
    assert "DataLoader timed out after 5.0 seconds" in done.stderr, done.stderr[-3000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_repeated_short_fits_of_each_toy_config_on_two_ranks(tmp_path):
    """20 fits of each shipped toy config on 2 CPU ranks (gloo) with 1 or 2 data workers each
    (fresh workers every fit), on shards of 1 and 3 samples (exact split and resampled) with
    a 2-sample validation shard: every fit finishes, none hangs."""
    from frozen.toy import SHAPES_LM_DIR

    rng = random.Random(0)
    for name, n in (("one", 1), ("two", 2), ("three", 3)):
        shards.write_tar(tmp_path / "data" / name / "00000.tar",
                         [shards.good_sample(f"{name}{i}", rng) for i in range(n)])
    fits, repeats = [], 5
    for config in ("toy.yaml", "toy-linear.yaml", "toy-perslot.yaml"):
        for workers, resampled, train in ((1, "false", "one"), (2, "false", "three"),
                                          (2, "true", "one"), (1, "true", "three")):
            args = ["--config", str(ROOT / "configs" / config), "--model.frozen.lm", str(SHAPES_LM_DIR),
                    "--data.train_shards", str(tmp_path / "data" / train),
                    "--data.val_shards", str(tmp_path / "data" / "two"), "--data.batch_size", "2",
                    "--data.pack_pairs", "2", "--data.epoch_samples", "64", "--data.val_samples", "4",
                    "--data.shuffle_buffer", "4", "--data.num_workers", str(workers),
                    "--data.resampled", resampled, "--trainer.max_steps", "2",
                    "--trainer.val_check_interval", "2", "--trainer.devices", "2",
                    "--trainer.strategy", "ddp", "--trainer.logger", "false",
                    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                    "--trainer.default_root_dir", str(tmp_path / f"run{len(fits)}")]
            fits.append([args, repeats])
    (tmp_path / "fits.json").write_text(json.dumps(fits))
    port, procs = _free_port(), []
    for rank in range(2):
        env = subprocess_env()
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                   LOCAL_RANK=str(rank), NODE_RANK="0")
        procs.append(subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "training" / "repeat_fits.py"),
             str(tmp_path / "fits.json"), str(tmp_path)], cwd=tmp_path, env=env,
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"stderr{rank}.txt", "w")))
    try:
        codes = [p.wait(timeout=600) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for rank in range(2):
        stderr = (tmp_path / f"stderr{rank}.txt").read_text()[-3000:]
        assert codes[rank] == 0, stderr
        lines = (tmp_path / f"rank{rank}.txt").read_text().split()
        assert lines == [str(x) for e in range(len(fits)) for r in range(repeats) for x in (e, r, 2)]
