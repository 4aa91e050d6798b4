"""Every YAML in configs/ parses, builds its objects with fit mocked (the 7B configs with the LM
on the meta device, from their real architecture configs), and FITS a few real steps: the 7B
configs with their LM swapped for a tiny random one of the same family, everything else as
shipped but devices (one CPU), batch and run sizes, and paths."""

from __future__ import annotations

import subprocess
from pathlib import Path
from unittest import mock

import pytest
import torch
from lightning.pytorch import Trainer
from transformers import GPTJConfig, LlamaConfig, MistralConfig

from frozen.testing import make_tiny_tokenizer
from frozen.training.fsdp import FrozenFSDPStrategy, unit_roots
from document_shards import write_good_documents
from train_runs import ROOT, run_cli

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

# Architecture of each large config's LM: (config, decoder block class, parameters in billions).
LARGE = {
    "llama2-7b-cc3m.yaml": (LlamaConfig(hidden_size=4096, intermediate_size=11008,
                                        num_hidden_layers=32, num_attention_heads=32,
                                        num_key_value_heads=32, vocab_size=32000,
                                        max_position_embeddings=4096),
                            "LlamaDecoderLayer", 6.74),
    "llama2-7b-mmc4.yaml": (LlamaConfig(hidden_size=4096, intermediate_size=11008,
                                        num_hidden_layers=32, num_attention_heads=32,
                                        num_key_value_heads=32, vocab_size=32000,
                                        max_position_embeddings=4096),
                            "LlamaDecoderLayer", 6.74),
    "mistral-7b-cc3m.yaml": (MistralConfig(hidden_size=4096, intermediate_size=14336,
                                           num_hidden_layers=32, num_attention_heads=32,
                                           num_key_value_heads=8, vocab_size=32000,
                                           max_position_embeddings=32768, sliding_window=4096),
                             "MistralDecoderLayer", 7.24),
    "gptj-6b-cc3m.yaml": (GPTJConfig(vocab_size=50400, n_positions=2048, n_embd=4096, n_layer=28,
                                     n_head=16, rotary_dim=64),
                          "GPTJBlock", 6.05),
}


def test_every_config_is_covered():
    assert {p.name for p in CONFIGS} == {"toy.yaml", "toy-linear.yaml", "toy-perslot.yaml", *LARGE}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses(path, capsys):
    with pytest.raises(SystemExit) as done:
        run_cli(["fit", "--config", str(path), "--print_config"])
    assert done.value.code in (0, None)
    assert "frozen:" in capsys.readouterr().out


def build(path: Path, *overrides: str):
    with mock.patch.object(Trainer, "fit", autospec=True) as fit:
        cli = run_cli(["fit", "--config", str(path), *overrides])
    fit.assert_called_once()
    return cli


def toy_overrides(tiny_lm, shards_, root) -> list[str]:
    return ["--model.frozen.lm", tiny_lm, "--data.train_shards", shards_,
            "--data.val_shards", shards_, "--trainer.default_root_dir", str(root)]


def test_toy_config_builds_a_head_told_nothing_of_the_world(good_shards, tmp_path):
    from frozen.toy import SHAPES_LM_DIR

    cli = build(ROOT / "configs" / "toy.yaml", *toy_overrides(str(SHAPES_LM_DIR), good_shards, tmp_path))
    model = cli.model.model
    assert cli.datamodule.train_urls == sorted(cli.datamodule.train_urls)
    assert "vocabulary" not in model.config.prefix_head_options and model.prefix_head.token_ids is None


def test_perslot_toy_config_builds_per_slot_soft_tokens(good_shards, tmp_path):
    from frozen.toy import SHAPES_LM_DIR
    from frozen.toy.standins import SLOT_VALUES, SLOTS, standin_token

    cli = build(ROOT / "configs" / "toy-perslot.yaml",
                *toy_overrides(str(SHAPES_LM_DIR), good_shards, tmp_path))
    model = cli.model.model
    assert model.config.prefix_head == "vocabulary"
    assert model.config.prefix_head_options["anneal"] == 100
    # Slot i mixes only the stand-ins of the i-th attribute, in the LM's stand-in order.
    assert model.config.prefix_head_options["vocabulary"] == [
        [standin_token(v) for v in SLOT_VALUES[slot]] for slot in SLOTS]


def test_linear_toy_config_builds(tiny_lm, good_shards, tmp_path):
    cli = build(ROOT / "configs" / "toy-linear.yaml", *toy_overrides(tiny_lm, good_shards, tmp_path))
    assert cli.model.model.config.prefix_head == "linear"
    assert cli.model.model.vision is not None


# What a fit on one CPU overrides: devices, sizes, paths. Validation and a checkpoint (the
# monitored one, val/ppl, for the 7B configs) happen at step 2, then the inference export.
FIT_ON_CPU = ["--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.max_steps", "2",
              "--trainer.val_check_interval", "2", "--checkpoint.every_n_train_steps", "2",
              "--data.batch_size", "2", "--data.num_workers", "0", "--data.val_samples", "4",
              "--data.epoch_samples", "400", "--trainer.logger", "false",
              "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
# The 7B configs on a CPU: their RN50 tower at 64 pixels instead of 224 (12x fewer FLOPs; the
# same layers and weights, its attention pool over 2x2 instead of 7x7 positions), and float32
# compute (bf16 convolution backward is about 5x slower than float32 on these CPUs; the
# sharded strategy's bf16 path is fitted in test_training_fsdp with a tiny tower).
CPU_SIZED = ["--model.frozen.image_size", "64", "--trainer.precision", "32-true"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_fits(path, lm_dirs, good_shards, tmp_path):
    from frozen.toy import SHAPES_LM_DIR

    if path.name in LARGE:
        lm = lm_dirs(LARGE[path.name][0].model_type)     # a tiny random LM of the same family
        extra = CPU_SIZED
    else:
        lm, extra = str(SHAPES_LM_DIR), []
    if "documents:" in path.read_text():      # pairs mixed with interleaved documents
        extra = [*extra, "--data.documents.shards", write_good_documents(tmp_path / "docs", 1, 8),
                 "--data.documents.batch_size", "2"]
    cli = run_cli(["fit", "--config", str(path), *toy_overrides(lm, good_shards, tmp_path),
                   *FIT_ON_CPU, *extra])
    assert cli.trainer.global_step == 2
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    assert torch.isfinite(cli.trainer.callback_metrics["val/ppl"])
    folder = tmp_path / "checkpoints"
    assert torch.load(folder / "last.ckpt", weights_only=True)["global_step"] == 2
    step2 = next(folder.glob("*step=2*.ckpt"))
    assert (folder / "last.ckpt").stat().st_ino == step2.stat().st_ino      # a link, not a copy
    assert (tmp_path / "inference" / "model.safetensors").is_file()


@pytest.mark.parametrize("name", sorted(LARGE))
def test_large_config_builds_on_the_meta_device(name, tmp_path):
    lm_config, block, billions = LARGE[name]
    lm_dir = tmp_path / "lm"
    lm_config.save_pretrained(lm_dir)          # the architecture only: config.json
    make_tiny_tokenizer().save_pretrained(lm_dir)
    cli = build(ROOT / "configs" / name, "--model.frozen.lm", str(lm_dir),
                "--model.frozen.lm_device", "meta", "--trainer.accelerator", "cpu",
                "--trainer.devices", "1", "--trainer.default_root_dir", str(tmp_path / "run"))
    frozen = cli.model.model
    lm_params = sum(p.numel() for p in frozen.lm.parameters())
    assert abs(lm_params / 1e9 - billions) < 0.05
    assert all(p.is_meta and not p.requires_grad for p in frozen.lm.parameters())
    assert all(p.requires_grad and not p.is_meta for p in frozen.trainable_parameters())
    assert [t.__name__ for t in frozen.lm_traits.block_types] == [block]
    assert cli.trainer.precision == "bf16-mixed"
    assert cli.datamodule.hparams.batch_size * 8 == 128          # Frozen's global batch
    if isinstance(cli.trainer.strategy, FrozenFSDPStrategy):
        check_fsdp_units(frozen, lm_config)


def check_fsdp_units(frozen, lm_config) -> None:
    """The units the sharded strategy makes: every unit (and the root) holds only frozen or only
    trainable parameters; each decoder block is a unit of its own; the input embeddings stay
    outside every unit (replicated)."""
    units = unit_roots(frozen)
    layers = getattr(lm_config, "num_hidden_layers", None) or lm_config.n_layer
    assert len(units) == layers + 4         # blocks, the rest of the LM, tower, head, root
    assert units[-1] is frozen
    embedding = set(frozen.lm.get_input_embeddings().parameters())
    inner = {id(u) for u in units}

    def own(module):
        nested = {id(m) for u in module.modules() if u is not module and id(u) in inner
                  for m in u.modules()}
        return [p for m in module.modules() if id(m) not in nested
                for p in m.parameters(recurse=False) if p not in embedding]

    for unit in units:
        flags = {p.requires_grad for p in own(unit)}
        assert len(flags) <= 1, type(unit).__name__
    assert not own(frozen)


def test_slurm_script():
    script = ROOT / "configs" / "slurm" / "train.sbatch"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert "#SBATCH --signal=SIGUSR1@" in text and "#SBATCH --requeue" in text
    assert "srun python train.py fit" in text and "--ckpt_path last" in text
