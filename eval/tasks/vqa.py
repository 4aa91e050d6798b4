"""Visual question answering: VQAv2 and OK-VQA, scored with the official VQA accuracy.

Data: the official question and annotation JSON files of the train split (demonstrations) and
of the val split (queries), and the COCO image folders. An image is found by
`options.image_name`, by default COCO_{data_subtype}_{image_id:012d}.jpg, where data_subtype
comes from the question file ("train2014", "val2014"). A demonstration answers with the
annotation's multiple_choice_answer (the most frequent human answer).

Scoring is the official VQA accuracy, unchanged. Before it, the model's answer goes through the
task's prediction post-processing, named by `options.postprocess` and recorded in results.json
(in the task's settings and notes; each record keeps the raw `output` beside the scored
`prediction`):
    lowercase   (default) lower-case the answer: the human answers are lower-case, and the
                official code compares them as they are when all humans agree ('Yes' scores 0)
    none        score the answer exactly as generated (cut at the stop strings, stripped)
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Sequence

from ..errors import EvalError
from ..metrics.match import mean_by_group
from ..metrics.vqa import vqa_accuracy
from ..queries import Example, ImageRef, Record
from .base import field_of, read_json, require_dir, require_file
from .fewshot import FewShotTask
from .registry import register


# Named clean-ups of a generated answer, applied before scoring (options.postprocess).
POSTPROCESS: dict[str, Callable[[str], str]] = {"lowercase": str.lower, "none": lambda text: text}


@register
class VQAv2(FewShotTask):
    name = "vqav2"
    description = "VQAv2 open-ended, val split (VQA accuracy, per answer type)"
    metrics = ("accuracy",)
    defaults = {
        "template": "<image>Question:{question} Short answer:{answer}<|endofchunk|>",
        "stop": ["\n", "Question", "Answer", "Short"],
        "decoding": {"max_new_tokens": 5},
    }
    option_defaults = {"image_name": "COCO_{data_subtype}_{image_id:012d}.jpg", "postprocess": "lowercase"}
    data_files = {
        "train_questions": "v2_OpenEnded_mscoco_train2014_questions.json",
        "train_annotations": "v2_mscoco_train2014_annotations.json",
        "train_images": "train2014",
        "test_questions": "v2_OpenEnded_mscoco_val2014_questions.json",
        "test_annotations": "v2_mscoco_val2014_annotations.json",
        "test_images": "val2014",
    }
    answer_field = "answer"

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        options = super().check_options(options)
        if options["postprocess"] not in POSTPROCESS:
            raise EvalError(f"task {cls.name}: options.postprocess {options['postprocess']!r} is not "
                            f"one of {sorted(POSTPROCESS)}")
        return options

    def __init__(self, settings):
        super().__init__(settings)
        name = self.options["postprocess"]
        self.postprocess = POSTPROCESS[name]
        self.notes.append(f"predictions post-processed before scoring: {name} (options.postprocess)")

    def read(self, output: str) -> str:
        """The answer cut at the stop strings, then the named post-processing."""
        return self.postprocess(super().read(output))

    def load_split(self, split: str) -> list[Example]:
        prefix = "test" if split == "test" else "train"
        q_path = require_file(self, f"{prefix}_questions", f"{split} questions file")
        a_path = require_file(self, f"{prefix}_annotations", f"{split} annotations file")
        images = require_dir(self, f"{prefix}_images", f"{split} image")
        questions_file = read_json(self, q_path, "questions file")
        questions = field_of(self, questions_file, "questions", q_path.name, list)
        annotations = field_of(self, read_json(self, a_path, "annotations file"), "annotations", a_path.name, list)
        subtype = questions_file.get("data_subtype") or images.name
        by_id = {}
        for i, ann in enumerate(annotations):
            by_id[field_of(self, ann, "question_id", f"{a_path.name}: annotations[{i}]", int)] = (i, ann)
        examples = []
        for i, q in enumerate(questions):
            where = f"{q_path.name}: questions[{i}]"
            qid = field_of(self, q, "question_id", where, int)
            image_id = field_of(self, q, "image_id", where, int)
            question = field_of(self, q, "question", where, str)
            if qid not in by_id:
                raise EvalError(f"task {self.name}: question {qid} ({where}) has no annotation in {a_path.name}")
            j, ann = by_id[qid]
            answers = self._answers(ann, f"{a_path.name}: annotations[{j}]")
            best = ann.get("multiple_choice_answer") or Counter(answers).most_common(1)[0][0]
            path = images / self._image_name(subtype, image_id)
            examples.append(Example(
                id=str(qid), image=ImageRef(str(path), path),
                fields={"question": question.strip(), "answer": str(best).strip()},
                references=tuple(answers), group=str(ann.get("answer_type", "")),
                meta={"question_id": qid, "image_id": image_id, "question": question}))
        return examples

    def _answers(self, ann: dict, where: str) -> list[str]:
        answers = field_of(self, ann, "answers", where, list)
        texts = [field_of(self, a, "answer", f"{where}.answers[{k}]", str) for k, a in enumerate(answers)]
        if not texts:
            raise EvalError(f"task {self.name}: {where} has no answers")
        return texts

    def _image_name(self, subtype: str, image_id: int) -> str:
        try:
            return self.options["image_name"].format(data_subtype=subtype, image_id=image_id)
        except (KeyError, IndexError, ValueError) as err:
            raise EvalError(f"task {self.name}: options.image_name {self.options['image_name']!r} "
                            f"cannot be filled ({err}); it may use {{data_subtype}} and {{image_id}}") from None

    def score(self, records: Sequence[Record]) -> dict[str, float]:
        values = [vqa_accuracy(r.prediction, r.references) for r in records]
        return mean_by_group("accuracy", values, [r.group for r in records])

    def export(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        """The official VQA results format."""
        return [{"question_id": r.meta["question_id"], "answer": r.prediction} for r in records]


@register
class OKVQA(VQAv2):
    name = "okvqa"
    description = "OK-VQA, val split (VQA accuracy)"
    data_files = {
        "train_questions": "OpenEnded_mscoco_train2014_questions.json",
        "train_annotations": "mscoco_train2014_annotations.json",
        "train_images": "train2014",
        "test_questions": "OpenEnded_mscoco_val2014_questions.json",
        "test_annotations": "mscoco_val2014_annotations.json",
        "test_images": "val2014",
    }
