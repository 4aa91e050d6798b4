"""Every task end to end with a tiny random Frozen model on tiny data written by the tests:
the command line on COCO, the other tasks through eval.run with the model loaded once."""

from __future__ import annotations

import json
import shutil

import pytest
from tiny_data import write_class_folders, write_karpathy, write_vqa

from eval.__main__ import main
from eval.run import run
from eval.settings import build

java = pytest.mark.skipif(shutil.which("java") is None, reason="Java is needed by pycocoevalcap")


def run_task(model, out, task, **values):
    settings = build({}, {"model": "unused", "out": str(out), "progress": False, **values}, select=[task])
    run(settings, model=model)
    return json.loads((out / "results.json").read_text())


@java
def test_coco_end_to_end_from_the_command_line(frozen_model_dir, coco_dir, tmp_path):
    out = tmp_path / "out"
    rc = main(["--model", str(frozen_model_dir), "--task", "coco", "--data", str(coco_dir),
               "--shots", "0", "2", "--trials", "2", "--zero-shot-text-demos", "2",
               "--max-new-tokens", "5", "--out", str(out), "--no-progress"])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    coco = results["tasks"]["coco"]
    assert set(coco["scores"]) == {"0", "2"}
    for entry in coco["scores"].values():
        assert len(entry["trials"]) == 2 and entry["trials"][0]["queries"] == 4
        assert {"CIDEr", "BLEU-4", "METEOR", "ROUGE-L"} <= set(entry["mean"]) and "CIDEr" in entry["std"]
    assert len(coco["predictions"]) == 2 * 2 * 4
    first = coco["predictions"][0]
    assert first["prompt"].count("<|endofchunk|>") == 2 and first["prompt"].endswith("<image>Output:")
    assert results["settings"]["tasks"][0]["decoding"]["max_new_tokens"] == 5
    exported = json.loads((out / "coco" / "answers" / "2shot_trial1.json").read_text())
    assert sorted(e["image_id"] for e in exported) == [106, 107, 108, 109]
    assert all(isinstance(e["caption"], str) for e in exported)
    assert len((out / "coco" / "predictions.jsonl").read_text().splitlines()) == 16
    assert "<svg" in (out / "report.html").read_text()


@java
def test_flickr30k(frozen_model, tmp_path):
    root = tmp_path / "flickr"
    write_karpathy(root, coco=False)
    results = run_task(frozen_model, tmp_path / "out", "flickr30k", data={"path": str(root)}, shots=[1],
                       trials=1, decoding={"max_new_tokens": 4}, options={"metrics": ["BLEU", "CIDEr"]})
    task = results["tasks"]["flickr30k"]
    assert set(task["scores"]["1"]["mean"]) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr"}
    assert sorted(p["meta"]["image_id"] for p in task["predictions"]) == [1006, 1007, 1008, 1009]


@pytest.mark.parametrize("task, prefix", [("vqav2", "v2_"), ("okvqa", "")])
def test_vqa(frozen_model, tmp_path, task, prefix):
    root = write_vqa(tmp_path / task, prefix=prefix)
    results = run_task(frozen_model, tmp_path / "out", task, data={"path": str(root)}, shots=[0, 2],
                       trials=1, batch_size=3)
    entry = results["tasks"][task]
    assert set(entry["scores"]) == {"0", "2"}
    assert "accuracy" in entry["scores"]["2"]["mean"] and "accuracy[yes/no]" in entry["scores"]["2"]["mean"]
    prompt = entry["predictions"][-1]["prompt"]
    assert prompt.count("Short answer:") == 3 and prompt.endswith("Short answer:")
    answers = json.loads((tmp_path / "out" / task / "answers" / "0shot_trial0.json").read_text())
    assert sorted(a["question_id"] for a in answers) == [50001, 51001, 52001, 53001]


def test_miniimagenet(frozen_model, tmp_path):
    root = write_class_folders(tmp_path / "mini", classes=3, per_class=3)
    results = run_task(frozen_model, tmp_path / "out", "miniimagenet", data={"path": str(root)},
                       shots=[1, 2], trials=1, max_queries=3,
                       options={"ways": 2, "repeats": 1, "task_induction": True})
    entry = results["tasks"]["miniimagenet"]
    assert set(entry["scores"]) == {"1", "2"}
    record = [p for p in entry["predictions"] if p["shots"] == 2][0]
    # 2 ways x 2 images, shown twice (repeats 1), then the query
    assert record["prompt"].count("<image>") == 2 * 2 * 2 + 1
    assert record["prompt"].startswith("Answer with ") and record["prompt"].endswith("A: This is a")
    assert record["references"][0] in record["meta"]["names"]


@pytest.mark.parametrize("task, shots", [("shapes-caption", [0]), ("shapes-heldout", [0]),
                                         ("shapes-style", [1, 2]), ("shapes-instruction", [1]),
                                         ("shapes-binding", [1])])
def test_shapes_world(frozen_model, tmp_path, task, shots):
    results = run_task(frozen_model, tmp_path / "out", task, shots=shots, trials=2, max_queries=5,
                       decoding={"max_new_tokens": 6})
    entry = results["tasks"][task]
    assert set(entry["scores"]) == {str(s) for s in shots}
    assert len(entry["predictions"]) == len(shots) * 2 * 5
    assert 0.0 <= entry["scores"][str(shots[0])]["mean"]["exact_match"] <= 100.0
    if task == "shapes-heldout":
        pairs = {tuple(p["meta"]["attributes"][1:3]) for p in entry["predictions"]}
        assert pairs <= {("purple", "triangle"), ("yellow", "diamond")}
    if task == "shapes-style":
        assert {"exact_match[plain]", "exact_match[pirate]"} <= set(entry["scores"]["1"]["mean"])


def test_rices_with_the_model_image_features(frozen_model, tmp_path):
    root = write_vqa(tmp_path / "vqa")
    out = tmp_path / "out"
    results = run_task(frozen_model, out, "vqav2", data={"path": str(root)}, shots=[2], trials=2,
                       selection="rices")
    cached = list((out / "cache").glob("image-features-*.pt"))
    assert len(cached) == 1
    records = results["tasks"]["vqav2"]["predictions"]
    by_trial = [[r["prompt"] for r in records if r["trial"] == t] for t in (0, 1)]
    assert by_trial[0] == by_trial[1]           # retrieval is deterministic: trials agree
    assert all(r["images"][-1] not in r["images"][:-1] for r in records)
