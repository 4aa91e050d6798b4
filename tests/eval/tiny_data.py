"""Tiny data sets in the formats of the real ones: Karpathy split JSON with images, VQA
question/annotation JSON with COCO-named images, and miniImageNet-like class folders."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

COLORS = [(220, 40, 40), (40, 170, 60), (40, 80, 220), (225, 195, 30), (140, 60, 190),
          (20, 20, 20), (240, 240, 240), (120, 120, 120)]


def solid(color, size=(24, 16)) -> Image.Image:
    return Image.new("RGB", size, color)


def write_karpathy(root: Path, n_train: int = 6, n_test: int = 4, coco: bool = True) -> Path:
    """dataset_coco.json (or the Flickr30k layout) and its images: one solid color each."""
    images = []
    for i in range(n_train + n_test):
        split = "train" if i < n_train else "test"
        folder = ("train2014" if split == "train" else "val2014") if coco else ""
        name = f"COCO_{folder}_{i:012d}.jpg" if coco else f"{1000 + i}.jpg"
        (root / folder).mkdir(parents=True, exist_ok=True)
        solid(COLORS[i % len(COLORS)]).save(root / folder / name)
        entry = {"filename": name, "split": split, "imgid": i,
                 "sentences": [{"raw": f"A photo number {i} of a thing.", "tokens": []},
                               {"raw": f"a picture of thing {i}", "tokens": []}]}
        if coco:
            entry.update(filepath=folder, cocoid=100 + i)
        images.append(entry)
    path = root / ("dataset_coco.json" if coco else "dataset_flickr30k.json")
    path.write_text(json.dumps({"images": images, "dataset": "coco" if coco else "flickr30k"}))
    if not coco:
        (root / "flickr30k-images").mkdir(exist_ok=True)
        for entry in images:
            (root / entry["filename"]).rename(root / "flickr30k-images" / entry["filename"])
    return path


def write_vqa(root: Path, prefix: str = "v2_", n_train: int = 5, n_test: int = 4) -> Path:
    """VQA question/annotation JSON for train2014 and val2014, and their COCO-named images."""
    for split, count, offset in (("train", n_train, 0), ("val", n_test, 50)):
        subtype = f"{split}2014"
        (root / subtype).mkdir(parents=True, exist_ok=True)
        questions, annotations = [], []
        for i in range(count):
            image_id, qid = offset + i, 1000 * (offset + i) + 1
            solid(COLORS[i % len(COLORS)]).save(root / subtype / f"COCO_{subtype}_{image_id:012d}.jpg")
            questions.append({"image_id": image_id, "question": f"What color is thing {i}?",
                              "question_id": qid})
            answers = ["red"] * 6 + ["two"] * 4 if i % 2 else ["yes"] * 10
            annotations.append({"question_id": qid, "image_id": image_id, "answer_type": "other" if i % 2 else "yes/no",
                                "question_type": "what color", "multiple_choice_answer": answers[0],
                                "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                                            for k, a in enumerate(answers)]})
        (root / f"{prefix}OpenEnded_mscoco_{subtype}_questions.json").write_text(json.dumps(
            {"data_subtype": subtype, "questions": questions}))
        (root / f"{prefix}mscoco_{subtype}_annotations.json").write_text(json.dumps(
            {"data_subtype": subtype, "annotations": annotations}))
    return root


def write_class_folders(root: Path, classes: int = 4, per_class: int = 3) -> Path:
    """miniImageNet-like: one subfolder of images per class."""
    for c in range(classes):
        folder = root / f"n0{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            solid(COLORS[c], size=(20 + k, 20)).save(folder / f"img{k}.jpg")
    return root
