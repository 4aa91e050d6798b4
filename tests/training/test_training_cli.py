"""train.py as a user meets it: config mistakes in one line with a did-you-mean (exit 2),
nothing written for a run that cannot start, Ctrl-C / SIGTERM saving a checkpoint to resume."""

from __future__ import annotations

import pytest
import torch
import yaml

from train_runs import ROOT, fit_args
from frozen.training.cli import explain_argument_error
from frozen.training.cli import run as run_script


def run(args: list[str]) -> int:
    """train.py's exit status for `args` (sys.argv cleared, as LightningCLI expects)."""
    import sys
    from unittest import mock

    with mock.patch.object(sys, "argv", ["train.py"]):
        return run_script(args)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert err[0].startswith("train.py: error: ")
    return err[0]


def toy_with(tmp_path, section: str, key: str, value) -> str:
    config = yaml.safe_load((ROOT / "configs" / "toy.yaml").read_text())
    target = config
    for part in section.split("."):
        target = target[part]
    target[key] = value
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.parametrize("section, key, value, expected", [
    ("model", "lrr", 1e-3, "unknown option 'model.lrr' (did you mean 'model.lr'?)"),
    ("model.frozen", "prefix_head", "linaer", "got 'linaer' (did you mean 'linear'?)"),
    ("trainer", "precision", "32-tru", "'32-tru' is not one of 64, 32, 16,"),
    ("data", "batch_size", "sixteen", "data.batch_size: Expected a <class 'int'>"),
])
def test_config_typos_are_one_line_with_a_suggestion(tmp_path, capsys, section, key, value, expected):
    config = toy_with(tmp_path, section, key, value)
    assert run(["fit", "--config", config, "--trainer.default_root_dir", str(tmp_path / "run")]) == 2
    assert expected in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_precision_typo_suggests_the_closest_value():
    message = ('Parser key "trainer.precision":\n  Does not validate against any of the Union subtypes\n'
               "  Subtypes: [typing.Literal['16-true', 'bf16-mixed', '32-true']]\n  Given value: 32-tru")
    assert explain_argument_error(message, []).endswith("(did you mean '32-true'?)")


def test_missing_shards_fail_before_anything_is_written(tiny_lm, tmp_path, capsys):
    args = fit_args(tiny_lm, str(tmp_path / "nope" / "{00000..00003}.tar"), tmp_path / "run", 3)
    assert run(args) == 2
    assert "train shards not found: none of the 4" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_resume_with_nothing_to_resume_is_an_error(tiny_lm, good_shards, tmp_path, capsys):
    assert run(fit_args(tiny_lm, good_shards, tmp_path / "run", 3, "--ckpt_path", "last")) == 2
    assert "--ckpt_path last: no checkpoint to resume in" in one_line_error(capsys)
    assert not (tmp_path / "run" / "lightning_logs").exists()


@pytest.mark.parametrize("signal_name, word", [("SIGINT", "interrupted"), ("SIGTERM", "terminated")])
def test_interrupt_saves_a_checkpoint_that_resumes(tiny_lm, good_shards, tmp_path, capsys,
                                                   signal_name, word):
    args = lambda *extra: fit_args(tiny_lm, good_shards, tmp_path / "run", 8,
                                   "--checkpoint.every_n_train_steps", "100", *extra)
    signal_at = ["--trainer.callbacks+=interrupter.SignalAtStep",
                 "--trainer.callbacks.step", "3", "--trainer.callbacks.signal_name", signal_name]
    assert run(args(*signal_at)) == 130
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] in (3, 4)       # the step in progress finishes first
    err = capsys.readouterr().err
    assert f"train.py: {word} at step {saved['global_step']}; checkpoint {last}" in err
    assert "Traceback" not in err
    assert run(args("--ckpt_path", "last")) == 0
    assert torch.load(last, weights_only=True)["global_step"] == 8


def test_console_is_step_lines_without_tips_or_known_warnings(tiny_lm, good_shards, tmp_path,
                                                              capsys, caplog, recwarn):
    args = fit_args(tiny_lm, good_shards, tmp_path / "run", 4, "--trainer.enable_progress_bar", "true",
                    "--data.val_shards", good_shards, "--data.val_samples", "16",
                    "--trainer.val_check_interval", "4")          # the last value of an option wins
    with caplog.at_level("INFO"):
        assert run(args) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert "loss" in lines[-1] and "\r" not in out and "Epoch" not in out
    assert "validation at step 4: perplexity" in out
    assert not [r for r in caplog.records if "Tip:" in r.getMessage()]
    shown = [str(w.message) for w in recwarn]
    assert not [m for m in shown if "eval mode" in m or "`__len__`" in m], shown
