"""Fixtures for the training tests: one thread per process (the test machines are small and
shared), and test shards written once per session."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

import caption_shards as shards  # noqa: E402
from train_runs import run_train, two_rank_args  # noqa: E402


@pytest.fixture(autouse=True)
def no_process_group_left():
    """In-process runs with a distributed strategy (one rank) leave a process group and
    MASTER_PORT & co. in os.environ, which later train.py subprocesses would inherit and
    collide with: end the group and restore the environment after every test."""
    import os

    import torch.distributed as dist

    environ = dict(os.environ)
    yield
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    os.environ.clear()
    os.environ.update(environ)


@pytest.fixture(scope="session")
def tiny_lm(lm_dirs) -> str:
    return lm_dirs("llama")


@pytest.fixture(scope="session")
def good_shards(tmp_path_factory) -> str:
    """4 shards x 24 solid-color pictures captioned with their color."""
    return shards.write_good_shards(tmp_path_factory.mktemp("good"), 4, 24)


@pytest.fixture(scope="session")
def bad_shards(tmp_path_factory) -> tuple[str, dict[str, int]]:
    """3 shards holding every kind of bad sample between good ones, and the expected counts.

    Order (no shuffling): shard 0 has 10 good, one of each per-sample bad kind, 10 good; shard
    1 is truncated inside its 8th sample (7 good read); shard 2 is missing; shard 3 has 20 good.
    """
    folder = tmp_path_factory.mktemp("bad")
    rng = random.Random(1)
    good = lambda prefix, n: [shards.good_sample(f"{prefix}{i:03d}", rng) for i in range(n)]
    bad = shards.bad_samples("b")
    shards.write_tar(folder / "00000.tar", good("a", 10) + list(bad.values()) + good("c", 10))
    cut = shards.write_tar(folder / "00001.tar", good("d", 12))
    shards.truncate_inside_sample(cut, 7)
    shards.write_tar(folder / "00003.tar", good("e", 20))
    expected = {kind: 1 for kind in bad}
    expected.update(truncated_tar=1, missing_shard=1, good=10 + 10 + 7 + 20)
    return str(folder / "{00000..00003}.tar"), expected


@pytest.fixture(scope="session")
def ddp_run(tiny_lm, good_shards, tmp_path_factory):
    """The two-process DDP run: (its folder, its probe folder, the finished process)."""
    tmp = tmp_path_factory.mktemp("ddp")
    done = run_train(two_rank_args(tiny_lm, good_shards, tmp / "run", tmp / "probe",
                                   "--trainer.strategy", "ddp"), cwd=tmp)
    assert done.returncode == 0, done.stderr[-4000:]
    return tmp / "run", tmp / "probe", done
