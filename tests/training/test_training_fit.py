"""train.py fit on generated shards, in process: learning, what stays frozen, checkpoints,
the inference folder, bad data."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import AutoModelForCausalLM

import caption_shards as shards
import run_probe as probes
from train_runs import fit_args, probe_args, run_cli
from frozen import FrozenModel
from frozen.data import DataError


@pytest.fixture(scope="module")
def run(tiny_lm, good_shards, tmp_path_factory):
    """One 40-step run with validation every 20 steps and checkpoints every 10."""
    root = tmp_path_factory.mktemp("fit")
    cli = run_cli(fit_args(tiny_lm, good_shards, root, 40,
                              "--data.val_shards", good_shards, "--data.val_samples", "32",
                              "--trainer.check_val_every_n_epoch", "null",
                              "--trainer.val_check_interval", "20",
                              "--checkpoint.every_n_train_steps", "10",
                              *probe_args(root / "probe")))
    return cli, root


def test_loss_falls_and_only_the_vision_side_changes(run, tiny_lm):
    cli, root = run
    records = probes.read(root / "probe")
    assert [r["step"] for r in records] == list(range(1, 41))
    losses = [r["loss"] for r in records]
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5, losses
    # The LM ran in eval mode at every step while the vision side trained.
    assert all(not r["lm_training"] and r["vision_training"] for r in records)
    trained = cli.model.model
    assert not trained.lm.training
    reference = AutoModelForCausalLM.from_pretrained(tiny_lm).state_dict()
    lm_state = trained.lm.state_dict()
    assert reference.keys() == lm_state.keys()
    assert all(torch.equal(reference[k], lm_state[k]) for k in reference)
    initial = torch.load(root / "probe" / "initial.pt")
    final = trained.trainable_state_dict()
    changed = [k for k in initial if not torch.equal(initial[k], final[k])]
    assert len(changed) > len(initial) // 2


def test_the_data_module_batches_with_the_models_processor(run):
    cli, _ = run
    assert cli.datamodule.processor is cli.model.model.processor


def test_a_data_module_without_a_processor_says_so(good_shards):
    from frozen.training import CaptionData

    with pytest.raises(ValueError, match="needs the model's processor"):
        CaptionData(good_shards).setup("fit")


def test_validation_reports_caption_perplexity(run):
    cli, _ = run
    ppl, loss = cli.trainer.callback_metrics["val/ppl"], cli.trainer.callback_metrics["val/loss"]
    assert torch.isfinite(ppl) and ppl > 1
    assert torch.allclose(ppl, loss.exp(), rtol=1e-4)


def test_checkpoints_hold_only_trainable_weights(run):
    cli, root = run
    folder = root / "checkpoints"
    names = sorted(p.name for p in folder.glob("*.ckpt"))
    assert "last.ckpt" in names and any("step=40" in n for n in names)
    ckpt = torch.load(folder / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 40
    assert set(ckpt["state_dict"]) == cli.model.trainable_keys
    assert not any(".lm." in k or k.startswith("model.lm") for k in ckpt["state_dict"])
    assert ckpt["optimizer_states"] and ckpt["lr_schedulers"]
    assert (folder / "last.ckpt").stat().st_size < 5_000_000
    assert not list(folder.glob(".*tmp*"))


def test_a_checkpoint_of_another_model_is_refused(run):
    cli, root = run
    state = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    state.pop(sorted(state)[0])
    with pytest.raises(ValueError, match="does not match this model's trainable weights"):
        cli.model.on_load_checkpoint({"state_dict": state})


def test_inference_folder_reloads(run, good_shards):
    cli, root = run
    loaded = FrozenModel.from_pretrained(root / "inference")
    trained = cli.model.model.trainable_state_dict()
    reloaded = loaded.trainable_state_dict()
    assert trained.keys() == reloaded.keys()
    assert all(torch.equal(trained[k].cpu(), reloaded[k]) for k in trained)
    assert isinstance(loaded.generate("a", max_new_tokens=2), str)


def test_any_checkpoint_exports_to_an_inference_folder(run, tmp_path):
    from frozen.training import export_checkpoint

    cli, root = run
    export_checkpoint(root / "checkpoints" / "last.ckpt", tmp_path / "exported")
    exported = FrozenModel.from_pretrained(tmp_path / "exported")
    assert exported.config.lm_device is None
    trained = cli.model.model.trainable_state_dict()
    assert all(torch.equal(v.cpu(), exported.trainable_state_dict()[k]) for k, v in trained.items())


def test_every_kind_of_bad_sample_trains_to_completion(tiny_lm, bad_shards, tmp_path):
    spec, expected = bad_shards
    # One data-loader worker process: its counts reach the main process inside the batches.
    cli = run_cli(fit_args(tiny_lm, spec, tmp_path, 5, "--data.resampled", "false",
                           "--data.shuffle_buffer", "0", "--data.epoch_samples", "40",
                           "--data.num_workers", "1"))
    assert cli.trainer.global_step == 5
    tally = cli.model.guard.tally
    assert tally.good == 40
    assert tally.counts() == {k: expected.get(k, 0) for k in tally.counts()}


def test_bad_validation_samples_are_counted_and_reported_at_the_end(tiny_lm, good_shards, bad_shards,
                                                                    tmp_path, caplog):
    spec, expected = bad_shards
    with caplog.at_level("INFO"):
        cli = run_cli(fit_args(tiny_lm, good_shards, tmp_path, 4, "--data.val_shards", spec,
                               "--data.val_samples", "40", "--trainer.check_val_every_n_epoch", "null",
                               "--trainer.val_check_interval", "4", "--trainer.num_sanity_val_steps", "0"))
    tally = cli.model.val_tally
    assert tally.good == 40            # the first 40 good pairs, in order: every bad kind among them
    assert tally.counts() == {k: expected.get(k, 0) for k in tally.counts()}
    assert f"validation data (last pass): 40 samples used, {tally.skipped} samples skipped" in caplog.text


def test_mostly_bad_data_stops_with_a_clear_error(tiny_lm, tmp_path):
    rng = random.Random(0)
    corrupt = shards.bad_samples("z")["corrupt_image"]
    samples = []
    for i in range(40):
        samples += [shards.good_sample(f"g{i:03d}", rng)] + [
            dict(corrupt, __key__=f"z{i:03d}{j}") for j in range(3)]
    shards.write_tar(tmp_path / "mostly-bad.tar", samples)
    with pytest.raises(DataError, match=r"samples were bad .*corrupt_image="):
        run_cli(fit_args(tiny_lm, str(tmp_path / "mostly-bad.tar"), tmp_path, 10,
                            "--model.bad_check_after", "40"))


def test_vocabulary_head_anneals_to_sharp_tokens_and_keeps_it(tiny_lm, good_shards, tmp_path):
    cli = run_cli(fit_args(tiny_lm, good_shards, tmp_path, 4,
                           "--model.frozen.prefix_head", "vocabulary",
                           "--model.frozen.prefix_head_options", '{"anneal": 100}'))
    head = cli.model.model.prefix_head
    assert float(head.sharpness_scale) == pytest.approx(100 ** (3 / 4))   # set at the last step
    reloaded = FrozenModel.from_pretrained(tmp_path / "inference")
    assert float(reloaded.prefix_head.sharpness_scale) == pytest.approx(100 ** (3 / 4))
