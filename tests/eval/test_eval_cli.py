"""Bad input gives one clear line naming the problem (exit status 2), never a traceback."""

from __future__ import annotations

import json

import pytest

from eval.__main__ import main


def fails(capsys, argv, *expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: ")
    for text in expected:
        assert text in err, err
    return err


def test_unknown_task_suggests_names(capsys, tmp_path):
    fails(capsys, ["--task", "cocoo", "--model", "m", "--out", str(tmp_path)],
          "unknown task 'cocoo'", "did you mean coco")


def test_missing_data_file_says_where_it_should_be(capsys, tmp_path):
    (tmp_path / "coco").mkdir()
    fails(capsys, ["--task", "coco", "--data", str(tmp_path / "coco"), "--model", "m", "--out", str(tmp_path)],
          "Karpathy split file (dataset_coco.json) not found at", "dataset_coco.json", "data.karpathy")


def test_missing_data_and_model(capsys, tmp_path, coco_dir):
    fails(capsys, ["--task", "coco", "--model", "m", "--out", str(tmp_path)], "needs data", "--data")
    fails(capsys, ["--task", "coco", "--data", str(coco_dir), "--model", str(tmp_path / "nope"),
                   "--out", str(tmp_path)], "model folder not found")


def test_malformed_json_names_file_and_position(capsys, tmp_path, coco_dir):
    (coco_dir / "dataset_coco.json").write_text('{"images": [ {"filename": "a.jpg",, } ]}')
    fails(capsys, ["--task", "coco", "--data", str(coco_dir), "--model", "m", "--out", str(tmp_path)],
          "is not valid JSON", "line 1")


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["images"][1].pop("sentences"), "images[1] has no field 'sentences'"),
    (lambda d: d["images"][0].update(split=3), "images[0].split should be str"),
    (lambda d: d.pop("images"), "has no field 'images'"),
])
def test_malformed_karpathy_field_is_named(capsys, tmp_path, coco_dir, mutate, expected):
    path = coco_dir / "dataset_coco.json"
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    fails(capsys, ["--task", "coco", "--data", str(path), "--model", "m", "--out", str(tmp_path)], expected)


def test_malformed_vqa_annotation_is_named(capsys, tmp_path, vqa_dir):
    path = vqa_dir / "v2_mscoco_val2014_annotations.json"
    data = json.loads(path.read_text())
    data["annotations"][2]["answers"][0] = {"text": "x"}
    path.write_text(json.dumps(data))
    fails(capsys, ["--task", "vqav2", "--data", str(vqa_dir), "--model", "m", "--out", str(tmp_path)],
          "annotations[2].answers[0] has no field 'answer'")


def test_config_errors_name_the_key(capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: m\nout: o\ntask: shapes-caption\nshot: [0]\n")
    fails(capsys, ["--config", str(config)], "unknown top-level key 'shot'", "did you mean 'shots'")
    config.write_text("model: m\nout: o\ntasks:\n  - {task: shapes-binding, options: {way: 4}}\n")
    fails(capsys, ["--config", str(config)], "unknown option 'way'", "ways")
    config.write_text("model: m\nout: o\ntask: shapes-caption\nshots: [0, -1]\n")
    fails(capsys, ["--config", str(config)], "shots must be an integer >= 0")
    config.write_text("model: m\nout: o\ntask: [unclosed\n")
    fails(capsys, ["--config", str(config)], "not valid YAML")
    fails(capsys, ["--config", str(tmp_path / "none.yaml")], "config file not found")
    config.write_text("model: m\nout: o\ntask: shapes-binding\nselection: rices\n")
    fails(capsys, ["--config", str(config)], "'rices' does not apply")


def test_decoding_errors_name_the_key(capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: m\nout: o\ntask: shapes-caption\ndecoding: {max_new_token: 5}\n")
    fails(capsys, ["--config", str(config)], "decoding: unknown sampling option(s): 'max_new_token'",
          "did you mean 'max_new_tokens'")
    config.write_text("model: m\nout: o\ntask: shapes-caption\ndecoding: {stop: [x]}\n")
    fails(capsys, ["--config", str(config)], "decoding: 'stop' is not set here", "`stop:` setting")
    config.write_text("model: m\nout: o\ntask: shapes-caption\ndecoding: {top_p: 2}\n")
    fails(capsys, ["--config", str(config)], "task shapes-caption: decoding: SamplingOptions.top_p")
    fails(capsys, ["--model", "m", "--out", "o", "--task", "shapes-caption", "--num-beams", "0"],
          "decoding: SamplingOptions.num_beams must be an integer >= 1, got 0")


def test_missing_java_is_reported_before_the_model_loads(capsys, monkeypatch, tmp_path, coco_dir):
    import eval.metrics.caption as caption

    monkeypatch.setattr(caption.shutil, "which", lambda name: None)
    fails(capsys, ["--task", "coco", "--data", str(coco_dir), "--model", str(tmp_path / "not-loaded"),
                   "--out", str(tmp_path / "o")], "Java is needed", "apt-get install -y default-jre-headless")


def test_list_tasks(capsys):
    assert main(["--list-tasks"]) == 0
    listed = capsys.readouterr().out
    for name in ("coco", "flickr30k", "vqav2", "okvqa", "miniimagenet", "shapes-caption", "shapes-heldout",
                 "shapes-style", "shapes-instruction", "shapes-binding"):
        assert name in listed


def test_without_out_a_missing_model_is_named_and_nothing_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fails(capsys, ["--model", "runs/nope", "--task", "shapes-caption", "--no-progress"],
          "model folder not found: 'runs/nope'")
    assert not (tmp_path / "runs").exists()


def test_without_out_outputs_go_beside_the_model(frozen_model_dir, tmp_path, capsys):
    model = tmp_path / "run" / "inference"
    import shutil

    shutil.copytree(frozen_model_dir, model)
    assert main(["--model", str(model), "--task", "shapes-caption", "--max-queries", "2",
                 "--trials", "1", "--shots", "0", "--no-progress"]) == 0
    assert (tmp_path / "run" / "eval" / "shapes-caption" / "results.json").is_file()
    assert "outputs in " + str(tmp_path / "run" / "eval" / "shapes-caption") in capsys.readouterr().out
