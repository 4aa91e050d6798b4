"""Every YAML in configs/ parses and builds its objects with fit mocked; the 7B configs build
with the LM on the meta device from their real architecture configs (no weights)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from unittest import mock

import pytest
from lightning.pytorch import Trainer
from transformers import GPTJConfig, LlamaConfig, MistralConfig

from frozen.testing import make_tiny_tokenizer
from frozen.training.blocks import decoder_block_types
from frozen.training.fsdp import FrozenFSDPStrategy, unit_roots
from train_runs import ROOT, run_cli

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

# Architecture of each large config's LM: (config, decoder block class, parameters in billions).
LARGE = {
    "llama2-7b-cc3m.yaml": (LlamaConfig(hidden_size=4096, intermediate_size=11008,
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
    assert model.config.prefix_vocabulary is None and model.prefix_vocabulary_ids is None


def test_perslot_toy_config_builds_per_slot_soft_tokens(good_shards, tmp_path):
    from frozen.toy import SHAPES_LM_DIR
    from frozen.toy.standins import SLOT_VALUES, SLOTS, standin_token

    cli = build(ROOT / "configs" / "toy-perslot.yaml",
                *toy_overrides(str(SHAPES_LM_DIR), good_shards, tmp_path))
    model = cli.model.model
    assert model.config.prefix_head == "vocabulary" and model.config.prefix_anneal == 100
    # Slot i mixes only the stand-ins of the i-th attribute, in the LM's stand-in order.
    assert model.config.prefix_vocabulary == [[standin_token(v) for v in SLOT_VALUES[slot]]
                                              for slot in SLOTS]


def test_linear_toy_config_builds(tiny_lm, good_shards, tmp_path):
    cli = build(ROOT / "configs" / "toy-linear.yaml", *toy_overrides(tiny_lm, good_shards, tmp_path))
    assert cli.model.model.config.prefix_head == "linear"
    assert cli.model.model.vision is not None


def test_toy_config_trains(good_shards, tmp_path):
    from frozen.toy import SHAPES_LM_DIR

    cli = run_cli(["fit", "--config", str(ROOT / "configs" / "toy.yaml"),
                   *toy_overrides(str(SHAPES_LM_DIR), good_shards, tmp_path), "--trainer.max_steps", "3",
                   "--data.batch_size", "4", "--trainer.enable_progress_bar", "false",
                   "--trainer.logger", "false"])
    assert cli.trainer.global_step == 3
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "inference" / "frozen_config.json").is_file()


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
    assert [t.__name__ for t in decoder_block_types(frozen.lm)] == [block]
    assert cli.trainer.precision == "bf16-mixed"
    assert cli.datamodule.hparams.batch_size * 8 == 128          # Frozen's global batch
    if isinstance(cli.trainer.strategy, FrozenFSDPStrategy):
        check_fsdp_units(frozen, lm_config)


def check_fsdp_units(frozen, lm_config) -> None:
    """What FSDP's auto-wrap would make of the model: every unit (and the root) holds only
    frozen or only trainable parameters; each decoder block is a unit of its own."""
    is_root = unit_roots(frozen)
    units = [m for m in frozen.modules() if is_root(m)]
    layers = getattr(lm_config, "num_hidden_layers", None) or lm_config.n_layer
    assert len(units) == layers + 3                 # blocks, the rest of the LM, tower, head

    def own(module):
        nested = {id(m) for u in module.modules() if u is not module and is_root(u)
                  for m in u.modules()}
        return [p for m in module.modules() if id(m) not in nested
                for p in m.parameters(recurse=False)]

    for unit in units + [frozen]:
        flags = {p.requires_grad for p in own(unit)}
        assert len(flags) <= 1, type(unit).__name__
    assert not own(frozen)


def test_slurm_script():
    script = ROOT / "configs" / "slurm" / "train.sbatch"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert "#SBATCH --signal=SIGUSR1@" in text and "#SBATCH --requeue" in text
    assert "srun python train.py fit" in text and "--ckpt_path last" in text
