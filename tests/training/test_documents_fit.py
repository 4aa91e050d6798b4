"""train.py on a mix of image-caption pairs and interleaved documents (MMC4 and converted
OBELICS shards): the steps alternate between the streams with their own batch sizes, bad
documents are counted exactly, the vision side learns; the 7B documents config fits with a
tiny Llama; two DDP ranks read disjoint documents."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import pytest
import torch

import document_shards as docs
import run_probe as probes
from train_runs import ROOT, TINY_VISION, fit_args, probe_args, run_cli, subprocess_env


@pytest.fixture(scope="module")
def document_specs(tmp_path_factory) -> list[str]:
    """An MMC4 shard (4 good, every bad kind, 4 good) and the converted OBELICS shards."""
    pytest.importorskip("pyarrow")
    from frozen.data.obelics import convert

    folder = tmp_path_factory.mktemp("mixed-docs")
    rng = random.Random(0)
    good = lambda prefix: [docs.good_document(f"{prefix}{i}", rng) for i in range(4)]
    mmc4 = docs.write_documents(folder / "mmc4" / "00000.tar",
                                good("a") + [s for s, _ in docs.bad_documents()] + good("c"))
    files, _ = docs.write_obelics(folder / "parquet", folder / "images")
    obelics, _ = convert([str(f) for f in files], folder / "obelics", folder / "images")
    return [str(mmc4), obelics]


def documents_args(specs: list[str], ratio: float = 0.5, batch_size: int = 3) -> list[str]:
    return ["--data.documents.shards", json.dumps(specs), "--data.documents.ratio", str(ratio),
            "--data.documents.batch_size", str(batch_size), "--data.documents.max_images", "4",
            "--data.documents.shuffle_buffer", "0"]


def test_training_mixes_pairs_and_documents(tiny_lm, good_shards, document_specs, tmp_path):
    cli = run_cli(fit_args(tiny_lm, good_shards, tmp_path, 8, "--data.resampled", "false",
                           "--data.shuffle_buffer", "0", *documents_args(document_specs),
                           *probe_args(tmp_path / "probe")))
    records = probes.read(tmp_path / "probe")
    assert [len(r["keys"]) for r in records] == [8, 3] * 4          # pairs, documents, ...
    assert all(math.isfinite(r["loss"]) for r in records)
    # 12 documents: the 11 usable ones of the MMC4 shard, then the first OBELICS one; every
    # bad document of the MMC4 shard was met on the way and counted under its kind.
    tally = cli.model.guard.tally
    assert tally.good == 4 * 8 + 12
    assert {k: v for k, v in tally.counts().items() if v} == {
        "bad_document": 3, "too_many_images": 1, "too_few_images": 2, "corrupt_image": 2,
        "truncated_image": 1}
    document_keys = [k for r in records[1::2] for k in r["keys"]]
    assert document_keys[-1] == "000000000" and sum(k.startswith("x") for k in document_keys) == 3
    initial = torch.load(tmp_path / "probe" / "initial.pt")
    final = cli.model.model.trainable_state_dict()
    assert sum(not torch.equal(initial[k], final[k]) for k in initial) > len(initial) // 2


def test_the_7b_documents_config_fits_with_a_tiny_llama(tiny_lm, good_shards, document_specs,
                                                         tmp_path):
    cli = run_cli(["fit", "--config", str(ROOT / "configs" / "llama2-7b-mmc4.yaml"),
                   "--model.frozen.lm", tiny_lm, "--model.frozen.vision", TINY_VISION,
                   "--model.frozen.image_size", "32", "--model.frozen.vision_embed_dim", "16",
                   "--trainer.accelerator", "cpu", "--trainer.devices", "1",
                   "--trainer.strategy", "auto", "--trainer.max_steps", "4",
                   "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false",
                   "--trainer.enable_progress_bar", "false",
                   "--data.train_shards", good_shards, "--data.val_shards", good_shards,
                   "--data.batch_size", "4", "--data.num_workers", "0",
                   "--data.shuffle_buffer", "8", "--data.epoch_samples", "64",
                   "--data.documents.shards", json.dumps(document_specs),
                   "--data.documents.batch_size", "2", "--data.documents.shuffle_buffer", "4",
                   *probe_args(tmp_path / "probe")])
    documents = cli.datamodule.documents
    assert (documents.ratio, documents.loss_on, documents.max_tokens) == (0.5, "text_after_image", 512)
    assert cli.trainer.global_step == 4 and cli.trainer.precision == "bf16-mixed"
    records = probes.read(tmp_path / "probe")
    assert [len(r["keys"]) for r in records] == [4, 2, 4, 2]
    assert all(math.isfinite(r["loss"]) for r in records)
    assert (tmp_path / "inference" / "frozen_config.json").is_file()


def test_two_ddp_ranks_read_disjoint_documents(tiny_lm, good_shards, tmp_path):
    spec = docs.write_good_documents(tmp_path / "docs", 2, 8)
    args = fit_args(tiny_lm, good_shards, tmp_path / "run", 4,
                    "--trainer.strategy", "ddp", "--trainer.devices", "2",
                    "--data.num_workers", "0", "--data.resampled", "false",
                    "--data.shuffle_buffer", "0", "--data.epoch_samples", "64",
                    *documents_args([spec], ratio=0.5, batch_size=2),
                    *probe_args(tmp_path / "probe"))
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = [probes.read(tmp_path / "probe", rank) for rank in (0, 1)]
    for records in ranks:
        assert [len(r["keys"]) for r in records] == [8, 2, 8, 2]
    documents = [[k for r in records[1::2] for k in r["keys"]] for records in ranks]
    assert all(k.startswith("d") for keys in documents for k in keys)
    assert len(set(documents[0] + documents[1])) == 8                  # an exact split


def test_shapes_world_documents_train_end_to_end(good_shards, tmp_path):
    from frozen.toy import SHAPES_LM_DIR
    from frozen.toy.documents import write_documents

    spec = write_documents(tmp_path / "shapes-docs", 16, per_shard=8)
    cli = run_cli(["fit", "--config", str(ROOT / "configs" / "toy.yaml"),
                   "--model.frozen.lm", str(SHAPES_LM_DIR), "--data.train_shards", good_shards,
                   "--data.val_shards", good_shards, "--trainer.default_root_dir", str(tmp_path),
                   "--trainer.max_steps", "4", "--data.batch_size", "2", "--data.num_workers", "0",
                   "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
                   "--data.documents.shards", spec, "--data.documents.batch_size", "3",
                   "--data.documents.min_images", "2", *probe_args(tmp_path / "probe")])
    records = probes.read(tmp_path / "probe")
    assert [len(r["keys"]) for r in records] == [8, 3, 8, 3]        # 2 x 4 packed pairs; 3 documents
    assert all(math.isfinite(r["loss"]) for r in records)
    assert cli.model.guard.tally.good == 2 * 8 + 2 * 3 and cli.model.guard.tally.skipped == 0
