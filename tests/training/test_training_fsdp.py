"""The sharded strategy (FSDP2) with two CPU processes (gloo) through train.py: with hard
gradient clipping, activation checkpointing and a NaN step, its loss curve is the DDP run's;
killed with SIGKILL on every rank it resumes from last.ckpt with exactly the saved weights and
optimizer state, at the same step and learning rate (the data stream restarts with a new seed,
by design, so later losses are not comparable); checkpoints hold the trainable weights only,
export to an inference folder, and the LM ends bit-identical."""

from __future__ import annotations

import math
import signal

import pytest
import torch
from transformers import AutoModelForCausalLM

import run_probe as probes
from frozen import FrozenModel
from frozen.training import export_checkpoint
from train_runs import fit_args, run_cli, run_train, two_rank_args

SHARDED = ("--trainer.strategy", "frozen_fsdp", "--model.activation_checkpointing", "true",
           "--checkpoint.every_n_train_steps", "2",
           "--data.num_workers", "0")       # the same samples as the DDP run's one worker; faster


@pytest.fixture(scope="module")
def sharded(tiny_lm, good_shards, tmp_path_factory):
    """Killed (every rank, SIGKILL) after step 5, then resumed from last.ckpt (step 4) to 6."""
    tmp = tmp_path_factory.mktemp("fsdp")
    run = lambda probe, *extra, **options: run_train(
        two_rank_args(tiny_lm, good_shards, tmp / "run", tmp / probe, *SHARDED, *extra,
                      **options), cwd=tmp)
    killed = run("killed", kill_all_at_step=5)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-4000:]
    step4 = torch.load(tmp / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    resumed = run("resumed", "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    return tmp, step4


def curve(probe, rank: int) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in probes.read(probe, rank)}


def test_sharded_loss_curve_matches_ddp(sharded, ddp_run):
    tmp, _ = sharded
    for rank in (0, 1):
        sharded_curve, reference = curve(tmp / "killed", rank), curve(ddp_run[1], rank)
        assert sorted(sharded_curve) == [1, 2, 3, 4, 5]
        for step, loss in sharded_curve.items():
            if math.isnan(reference[step]):    # rank 1's step 3, skipped on both ranks in both runs
                assert math.isnan(loss)
            else:
                assert loss == pytest.approx(reference[step], rel=1e-5, abs=1e-6), (rank, step)


def test_killed_sharded_run_resumes_where_it_was_saved(sharded, ddp_run):
    tmp, step4 = sharded
    assert step4["global_step"] == 4
    # The weights and optimizer state it resumed with are step 4's, on both ranks' shards.
    restored = torch.load(tmp / "resumed" / "resumed.pt", weights_only=True)
    assert restored["state_dict"].keys() == step4["state_dict"].keys()
    assert all(torch.equal(v, step4["state_dict"][k]) for k, v in restored["state_dict"].items())
    saved_state = step4["optimizer_states"][0]["state"]
    assert restored["optimizer"]["state"].keys() == saved_state.keys()
    for name, state in restored["optimizer"]["state"].items():
        assert all(torch.equal(state[k], saved_state[name][k]) for k in state), name
    # Then it runs steps 5 and 6 on the uninterrupted schedule (same learning rates).
    reference = {r["step"]: r["lr"] for r in probes.read(ddp_run[1], 0)}
    records = probes.read(tmp / "resumed", 0)
    assert [r["step"] for r in records] == [5, 6]
    assert all(r["lr"] == pytest.approx(reference[r["step"]], rel=1e-12) for r in records)
    assert [r["skipped_steps"] for r in probes.read(tmp / "resumed", 1)] == [1, 1]  # tally too


def test_sharded_checkpoints_hold_trainable_weights_and_export(sharded, tmp_path):
    tmp, step4 = sharded
    folder = tmp / "run" / "checkpoints"
    last = torch.load(folder / "last.ckpt", weights_only=True)
    assert last["global_step"] == 6
    assert all(k.startswith(("model.vision.", "model.prefix_head.")) for k in last["state_dict"])
    assert all(isinstance(v, torch.Tensor) and not hasattr(v, "placements")
               for v in last["state_dict"].values())                 # full tensors, not shards
    at_end = FrozenModel.from_pretrained(tmp / "run" / "inference")
    trainable = {"model." + name for name, p in at_end.named_parameters() if p.requires_grad}
    assert set(last["optimizer_states"][0]["state"]) == trainable      # by name, in full
    # last.ckpt is the step-6 checkpoint under a second name, not a second copy.
    assert (folder / "last.ckpt").stat().st_ino == (folder / "epoch=0-step=6.ckpt").stat().st_ino
    export_checkpoint(folder / "last.ckpt", tmp_path / "exported")
    exported = FrozenModel.from_pretrained(tmp_path / "exported").trainable_state_dict()
    at_end = at_end.trainable_state_dict()
    assert exported.keys() == at_end.keys()
    assert all(torch.equal(exported[k], at_end[k]) for k in exported)


def test_sharded_run_keeps_the_lm_bit_identical(sharded, tiny_lm):
    tmp, _ = sharded
    reference = AutoModelForCausalLM.from_pretrained(tiny_lm).state_dict()
    trained = torch.load(tmp / "resumed" / "lm.pt", weights_only=True)
    assert trained.keys() == reference.keys()
    assert all(torch.equal(reference[k], trained[k]) for k in reference)


def test_one_device_bf16_mixed(tiny_lm, good_shards, tmp_path):
    """One rank, bf16-mixed: the LM's units gather in bf16; the tower (with BatchNorm) keeps
    float32 weights under autocast; the checkpoint and export work as with two ranks."""
    cli = run_cli(fit_args(tiny_lm, good_shards, tmp_path, 2, "--trainer.strategy", "frozen_fsdp",
                           "--trainer.precision", "bf16-mixed",
                           "--model.activation_checkpointing", "true",
                           "--data.val_shards", good_shards, "--data.val_samples", "8",
                           "--trainer.check_val_every_n_epoch", "null",
                           "--trainer.val_check_interval", "2"))
    assert cli.trainer.global_step == 2
    metrics = cli.trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"]) and torch.isfinite(metrics["val/ppl"])
    model = cli.model.model
    assert all(p.dtype == torch.float32 for p in model.trainable_parameters())
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert set(last["state_dict"]) == cli.model.trainable_keys
    assert "train/mfu" not in metrics                               # no MFU on a CPU
    assert (tmp_path / "inference" / "model.safetensors").is_file()
