"""Two-process CPU DDP (gloo): the run completes, the ranks see different samples, and a NaN
loss on one rank is skipped on both."""

from __future__ import annotations

import math

from safetensors.torch import load_file

import run_probe as probes


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
