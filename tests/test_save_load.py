"""save_pretrained / from_pretrained: only the trainable side, identical outputs, LM checks."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from frozen import FrozenConfig, FrozenModel, Target


def trained(model):
    """Perturb the vision side so a reload that ignored the weights would be caught."""
    with torch.no_grad():
        for p in model.trainable_parameters():
            p.add_(torch.randn_like(p) * 0.5)
    model.train()
    model(model.collate([[Image.new("RGB", (32, 32), (i * 50, 9, 9)), Target("x")] for i in range(3)]))
    return model.eval()


def test_roundtrip_keeps_an_annealed_per_slot_vocabulary_head(tiny_model, tmp_path):
    model = trained(tiny_model(prefix_head="vocabulary", num_prefix_tokens=2, prefix_head_options=
                               {"vocabulary": [["a", "b"], ["c", "d", "e"]], "anneal": 50.0}))
    model.prefix_head.on_train_progress(1.0)
    loaded = FrozenModel.from_pretrained(model.save_pretrained(tmp_path / "saved"))
    assert loaded.config.prefix_head_options["vocabulary"] == [["a", "b"], ["c", "d", "e"]]
    assert float(loaded.prefix_head.sharpness_scale) == 50.0
    batch = model.collate([[Image.new("RGB", (30, 40), (10, 200, 30)), "a photo of"]])
    assert torch.equal(model.embed(batch), loaded.embed(batch))


def test_folder_saved_with_the_older_head_fields_loads(tiny_model, tmp_path):
    """frozen_config.json once held prefix_vocabulary, prefix_anneal and extra at the top."""
    options = {"vocabulary": [["a", "b"], ["c", "d", "e"]], "anneal": 50.0}
    model = trained(tiny_model(prefix_head="vocabulary", prefix_head_options=options))
    model.prefix_head.on_train_progress(1.0)
    folder = model.save_pretrained(tmp_path / "saved")
    meta = json.loads((folder / "frozen_config.json").read_text())
    config = meta["config"]
    del config["prefix_head_options"]
    config.update(prefix_vocabulary=options["vocabulary"], prefix_anneal=50.0, extra={})
    (folder / "frozen_config.json").write_text(json.dumps(meta))
    loaded = FrozenModel.from_pretrained(folder)
    assert loaded.config.prefix_head_options == options
    batch = model.collate([[Image.new("RGB", (30, 40), (10, 200, 30)), "a photo of"]])
    assert torch.equal(model.embed(batch), loaded.embed(batch))
    # A linear head's config wrote the unused values, which map to no options at all.
    old = dict(lm="some/model", prefix_head="linear", prefix_vocabulary=None, prefix_anneal=1.0,
               extra={})
    assert FrozenConfig.from_dict(old).prefix_head_options == {}


def test_roundtrip_gives_identical_outputs(tiny_model, tmp_path):
    model = trained(tiny_model())
    folder = model.save_pretrained(tmp_path / "saved")
    assert sorted(p.name for p in folder.iterdir()) == ["frozen_config.json", "model.safetensors"]
    weights = load_file(str(folder / "model.safetensors"))
    assert weights and all(FrozenModel.is_trainable(k) for k in weights)
    assert any("running_mean" in k for k in weights)      # BatchNorm statistics travel too
    lm_bytes = sum(p.numel() for p in model.lm.parameters()) * 4
    assert (folder / "model.safetensors").stat().st_size < lm_bytes + model.num_trainable * 4 + 10**6

    loaded = FrozenModel.from_pretrained(folder)
    img = Image.new("RGB", (30, 40), (10, 200, 30))
    batch = model.collate([[img, "a photo of"]])
    assert torch.equal(model.embed(batch), loaded.embed(batch))
    assert model.generate([[img, "a"]], max_new_tokens=6) == loaded.generate([[img, "a"]], max_new_tokens=6)


def test_reload_onto_another_copy_of_the_same_lm(tiny_model, lm_dirs, tmp_path):
    model = trained(tiny_model())
    folder = model.save_pretrained(tmp_path / "saved")
    copy = tmp_path / "lm-copy"
    shutil.copytree(lm_dirs("llama"), copy)
    loaded = FrozenModel.from_pretrained(folder, lm=str(copy))
    assert loaded.config.lm == str(copy)


def test_refuses_a_different_lm(tiny_model, lm_dirs, tmp_path):
    folder = tiny_model().save_pretrained(tmp_path / "saved")
    with pytest.raises(ValueError, match="LM mismatch"):
        FrozenModel.from_pretrained(folder, lm=lm_dirs("llama", context=128))


def test_not_a_saved_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved FrozenModel folder"):
        FrozenModel.from_pretrained(tmp_path)


def test_saved_folder_records_the_lm_as_an_absolute_path_and_loads_from_anywhere(
        tiny_model, lm_dirs, tmp_path, monkeypatch):
    import json
    import os
    from pathlib import Path

    lm = Path(lm_dirs("llama"))
    monkeypatch.chdir(lm.parent)
    model = tiny_model(lm=lm.name)                       # a relative LM path, as configs give it
    folder = model.save_pretrained(tmp_path / "saved")
    recorded = json.loads((folder / "frozen_config.json").read_text())["config"]["lm"]
    assert os.path.isabs(recorded) and Path(recorded) == lm.resolve()
    monkeypatch.chdir(tmp_path)                          # another working folder
    assert FrozenModel.from_pretrained(folder).lm_fingerprint() == model.lm_fingerprint()


def test_missing_lm_says_how_to_point_at_it(tiny_model, lm_dirs, tmp_path):
    copy = tmp_path / "lm-copy"
    shutil.copytree(lm_dirs("llama"), copy)
    folder = tiny_model(lm=str(copy)).save_pretrained(tmp_path / "saved")
    shutil.rmtree(copy)
    with pytest.raises(FileNotFoundError, match=r"LM folder not found.*lm=PATH.*--lm-path"):
        FrozenModel.from_pretrained(folder)
    assert FrozenModel.from_pretrained(folder, lm=lm_dirs("llama")).vision is not None


@pytest.mark.parametrize("failing_write", ["weights", "config"])
def test_an_interrupted_save_keeps_the_previous_model_loadable(tiny_model, tmp_path, monkeypatch,
                                                               failing_write):
    import pathlib

    import safetensors.torch

    old, new = trained(tiny_model()), trained(tiny_model())
    folder = old.save_pretrained(tmp_path / "saved")
    (folder / "notes.txt").write_text("the user's own file")

    def cut(*args, **kwargs):
        raise KeyboardInterrupt

    if failing_write == "weights":          # the config is written by then
        monkeypatch.setattr(safetensors.torch, "save_file", cut)
    else:
        monkeypatch.setattr(pathlib.Path, "write_text", cut)
    with pytest.raises(KeyboardInterrupt):
        new.save_pretrained(folder)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]      # no temporary folder
    assert sorted(p.name for p in folder.iterdir()) == ["frozen_config.json", "model.safetensors",
                                                         "notes.txt"]
    batch = old.collate([[Image.new("RGB", (30, 40), (10, 200, 30)), "a photo of"]])
    assert torch.equal(FrozenModel.from_pretrained(folder).embed(batch), old.embed(batch))


def test_saving_over_a_model_replaces_it_and_keeps_other_files(tiny_model, tmp_path):
    old, new = trained(tiny_model()), trained(tiny_model())
    folder = old.save_pretrained(tmp_path / "saved")
    (folder / "notes.txt").write_text("the user's own file")
    new.save_pretrained(folder)
    assert (folder / "notes.txt").read_text() == "the user's own file"
    batch = new.collate([[Image.new("RGB", (30, 40), (10, 200, 30)), "a photo of"]])
    assert torch.equal(FrozenModel.from_pretrained(folder).embed(batch), new.embed(batch))


def test_a_folder_mixing_two_saves_is_refused(tiny_model, tmp_path):
    first = trained(tiny_model()).save_pretrained(tmp_path / "first")
    second = trained(tiny_model()).save_pretrained(tmp_path / "second")
    shutil.copy(second / "model.safetensors", first / "model.safetensors")
    with pytest.raises(ValueError, match="written by different saves"):
        FrozenModel.from_pretrained(first)


def test_a_folder_saved_without_a_weights_id_still_loads(tiny_model, tmp_path):
    import json

    from safetensors.torch import save_file

    model = trained(tiny_model())
    folder = model.save_pretrained(tmp_path / "saved")
    meta = json.loads((folder / "frozen_config.json").read_text())
    del meta["weights_id"]
    (folder / "frozen_config.json").write_text(json.dumps(meta))
    save_file(load_file(str(folder / "model.safetensors")), str(folder / "model.safetensors"))
    batch = model.collate([[Image.new("RGB", (30, 40), (10, 200, 30)), "a photo of"]])
    assert torch.equal(FrozenModel.from_pretrained(folder).embed(batch), model.embed(batch))
