"""The LM build script is deterministic: the same seed gives the same weights bit for bit, so
the shipped weights are reproducible by `python -m frozen.toy.build_lm`."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from frozen.toy.build_lm import LMRecipe, build

SHORT = LMRecipe(hidden_size=32, num_heads=2, intermediate_size=64, num_layers=1, steps=4,
                 batch_size=8, pool_batches=2, warmup_steps=2, binding_rounds=0)


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        build(tmp_path / name, seed, SHORT, progress=False)
    a, b, c = (_weights(tmp_path / name) for name in "abc")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (tmp_path / "b" / "tokenizer.json").read_text()


def test_a_build_that_cannot_bind_trains_rounds_until_its_limit_and_says_so(tmp_path):
    """An untrained LM misses fast binding, so the build trains its `binding_rounds` extra rounds
    (more steps than the recipe's), checking after each, and reports every check."""
    rounds = replace(SHORT, binding_rounds=2, round_steps=3, round_warmup_steps=1)
    _, _, losses, lines = build(tmp_path / "lm", 0, rounds, progress=False)
    assert len(losses) == SHORT.steps + 2 * 3
    assert [line.split(":")[0] for line in lines] == [f"- after {n} binding round(s)" for n in range(3)]
    assert all("binding 2-way" in line and "seed 20249" in line for line in lines)
    plain = build(tmp_path / "plain", 0, SHORT, progress=False)[3]
    assert plain == [] and any(not torch.equal(a, b) for a, b in
                               zip(_weights(tmp_path / "lm").values(), _weights(tmp_path / "plain").values()))
    for name in ("tokenizer.json", "tokenizer_config.json"):    # the checks leave the tokenizer as it was
        assert (tmp_path / "lm" / name).read_text() == (tmp_path / "plain" / name).read_text()


def test_a_build_that_binds_trains_no_round(tmp_path, monkeypatch):
    """When the build's own check passes, the weights are the recipe's steps alone, bit for bit."""
    import frozen.toy.build_lm as build_lm

    def passing_check(*args, only, **kwargs):
        return {name: 1.0 for name in only}

    monkeypatch.setattr(build_lm, "check_model", passing_check)
    recipe = replace(SHORT, binding_rounds=2, round_steps=3)
    _, _, losses, lines = build(tmp_path / "lm", 0, recipe, progress=False)
    build(tmp_path / "plain", 0, SHORT, progress=False)
    assert len(losses) == SHORT.steps and len(lines) == 1 and "after 0 binding round(s)" in lines[0]
    a, b = _weights(tmp_path / "lm"), _weights(tmp_path / "plain")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_mixed_standins_change_only_the_chosen_standins():
    from frozen.toy.build_lm import mixed_standins

    generator = torch.Generator().manual_seed(0)
    embeds = torch.randn(4, 50, 8)                                          # (B, T, D)
    is_standin = (torch.arange(50) % 5 == 0).expand(4, 50).unsqueeze(-1)    # (B, T, 1)
    vocabulary = torch.randn(30, 8)                                         # (V, D)
    mixed = mixed_standins(embeds, is_standin, vocabulary, 0.5, generator)
    changed = (mixed != embeds).any(-1)                                     # (B, T)
    assert not changed[~is_standin.squeeze(-1)].any()
    assert 0.2 < changed[is_standin.squeeze(-1)].float().mean() < 0.8
    assert torch.equal(mixed_standins(embeds, is_standin, vocabulary, 0.0, generator), embeds)


def test_the_build_ends_with_the_text_only_check_in_its_readme(tmp_path, capsys):
    """`build_lm` measures the LM's text-only accuracy (fast binding included) on the check's own
    seed and writes it beside the recipe; an untrained LM shows up as below target."""
    from frozen.toy.build_lm import main

    threads = torch.get_num_threads()
    try:
        main(["--out", str(tmp_path / "lm"), "--steps", "1", "--check-queries", "2", "--binding-rounds", "0"])
    finally:
        torch.set_num_threads(threads)      # main sets the process's torch threads
    readme = (tmp_path / "lm" / "README.md").read_text()
    assert "Text-only accuracy, measured at the end of the build" in readme
    for task in ("| plain zero-shot |", "| binding 2-way |", "| binding 4-way |", "seed 20250"):
        assert task in readme
    assert "BELOW TARGET in text already" in readme and "binding 2-way" in capsys.readouterr().out


def test_a_shuffle_chance_outside_0_1_stops_the_build_before_it_writes(tmp_path, capsys):
    from frozen.toy.build_lm import main

    for bad in ("1.5", "-0.1", "half"):
        with pytest.raises(SystemExit):
            main(["--out", str(tmp_path / "lm"), "--shuffle-standins", bad])
        assert f"--shuffle-standins: {bad!r} is not a chance in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "lm").exists()


def test_a_negative_round_count_stops_the_build_before_it_writes(tmp_path, capsys):
    from frozen.toy.build_lm import main

    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "lm"), "--binding-rounds", "-1"])
    assert "--binding-rounds: '-1' is not a whole number >= 0" in capsys.readouterr().err
    assert not (tmp_path / "lm").exists()


def test_checking_an_unknown_text_task_is_refused_by_name():
    from frozen.toy.check_lm import check_model

    with pytest.raises(ValueError, match=r"unknown text task\(s\) \['binding 3-way'\]"):
        check_model(None, None, only=["binding 2-way", "binding 3-way"])


def test_the_check_table_averages_instruction_styles_only_when_it_has_them():
    from frozen.toy.check_lm import report

    results = {"instruction 4-shot plain": 0.9, "instruction 4-shot shout": 0.6, "binding 2-way": 1.0}
    lines = report(results, 10, 1)
    assert "| instruction 4-shot average | 0.750 | 0.80 |" in lines
    assert lines[-1].endswith("BELOW TARGET in text already (the image system cannot do better): "
                              "instruction 4-shot shout")
    assert not any("average" in line or "nan" in line for line in report({"binding 2-way": 1.0}, 10, 1))
