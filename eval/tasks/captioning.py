"""Captioning on the Karpathy splits of COCO and Flickr30k, scored with pycocoevalcap.

Data: a Karpathy split file (`dataset_coco.json` / `dataset_flickr30k.json`): images[] with
filename, split, sentences[].raw, and for COCO filepath (e.g. "val2014") and cocoid. An image
is at <images>/<filepath>/<filename>. Queries come from the "test" split, demonstrations from
"train" + "restval" (the usual 113k COCO train set); a demonstration shows its first sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import EvalError
from ..metrics.caption import SCORERS, caption_scores, require_java
from ..queries import Example, ImageRef, Record
from .base import field_of, read_json, require_dir, require_file
from .fewshot import FewShotTask
from .registry import register

CAPTION_DEFAULTS: dict[str, Any] = {
    "template": "<image>Output:{caption}<|endofchunk|>",
    "stop": ["Output"],
    "decoding": {"max_new_tokens": 20},
}


@register
class CocoCaptioning(FewShotTask):
    name = "coco"
    description = "COCO captioning, Karpathy test split (CIDEr, BLEU-4, METEOR, SPICE)"
    metrics = ("CIDEr", "BLEU-4", "METEOR", "ROUGE-L", "SPICE")
    defaults = CAPTION_DEFAULTS
    option_defaults = {"test_split": "test", "train_splits": ["train", "restval"], "metrics": list(SCORERS)}
    data_files = {"karpathy": "dataset_coco.json", "images": "."}
    primary_data = "karpathy"
    answer_field = "caption"
    karpathy_name = "Karpathy split file (dataset_coco.json)"

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        options = super().check_options(options)
        metrics = options["metrics"]
        if not isinstance(metrics, list) or not metrics or any(m not in SCORERS for m in metrics):
            raise EvalError(f"task {cls.name}: options.metrics must list some of {', '.join(SCORERS)}, "
                            f"got {metrics!r}")
        return options

    def __init__(self, settings):
        super().__init__(settings)
        self._images: list[Any] | None = None

    def prepare(self) -> None:
        require_java()                  # before hours of generation, not after
        super().prepare()

    def _karpathy(self) -> list[Any]:
        if self._images is None:
            path = require_file(self, "karpathy", self.karpathy_name)
            data = read_json(self, path, "Karpathy split file")
            self._images = field_of(self, data, "images", path.name, list)
        return self._images

    def load_split(self, split: str) -> list[Example]:
        images = self._karpathy()
        root = require_dir(self, "images", "image")
        wanted = [self.options["test_split"]] if split == "test" else list(self.options["train_splits"])
        examples, seen = [], set()
        for i, entry in enumerate(images):
            where = f"images[{i}]"
            name = field_of(self, entry, "split", where, str)
            seen.add(name)
            if name in wanted:
                examples.append(self._example(entry, where, root))
        if not examples:
            raise EvalError(f"task {self.name}: the Karpathy file has no images in split(s) "
                            f"{wanted} (it has: {', '.join(sorted(seen))})")
        return examples

    def _example(self, entry: dict, where: str, root: Path) -> Example:
        filename = field_of(self, entry, "filename", where, str)
        sentences = field_of(self, entry, "sentences", where, list)
        captions = [field_of(self, s, "raw", f"{where}.sentences[{j}]", str) for j, s in enumerate(sentences)]
        if not captions:
            raise EvalError(f"task {self.name}: {where} has no sentences")
        folder = field_of(self, entry, "filepath", where, str) if "filepath" in entry else ""
        path = root / folder / filename
        image_id = _image_id(entry, filename)
        return Example(id=str(image_id), image=ImageRef(str(path), path),
                       fields={"caption": captions[0].strip()}, references=tuple(captions),
                       meta={"image_id": image_id})

    def score(self, records: Sequence[Record]) -> dict[str, float]:
        predictions = {r.id: r.prediction for r in records}
        references = {r.id: r.references for r in records}
        scores, notes = caption_scores(predictions, references, self.options["metrics"])
        self.notes += [n for n in notes if n not in self.notes]
        return scores

    def export(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        return [{"image_id": r.meta["image_id"], "caption": r.prediction} for r in records]


@register
class Flickr30kCaptioning(CocoCaptioning):
    name = "flickr30k"
    description = "Flickr30k captioning, Karpathy test split (CIDEr, BLEU-4, METEOR, SPICE)"
    option_defaults = {"test_split": "test", "train_splits": ["train"], "metrics": list(SCORERS)}
    data_files = {"karpathy": "dataset_flickr30k.json", "images": "flickr30k-images"}
    karpathy_name = "Karpathy split file (dataset_flickr30k.json)"


def _image_id(entry: dict, filename: str) -> int | str:
    """COCO's cocoid; else the file name's number (Flickr30k), else the file name's stem."""
    if isinstance(entry.get("cocoid"), int):
        return entry["cocoid"]
    stem = Path(filename).stem
    return int(stem) if stem.isdigit() else stem
