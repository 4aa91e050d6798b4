"""Metrics against values computed by hand: VQA accuracy and normalisation (the official
evaluation's behaviour), CIDEr-D through pycocoevalcap, exact match by group."""

from __future__ import annotations

import math
import shutil

import pytest

from eval.errors import EvalError
from eval.metrics.match import exact_match, mean_by_group
from eval.metrics.vqa import normalize_answer, vqa_accuracy

java = pytest.mark.skipif(shutil.which("java") is None, reason="Java is needed by pycocoevalcap")


@pytest.mark.parametrize("raw, normalized", [
    ("two", "2"),
    ("a dog", "dog"),
    ("The Dog", "dog"),
    ("yes!", "yes"),
    ("dont", "don't"),
    ("isnt it", "isn't it"),
    ("1,000", "1000"),             # a thousands separator goes
    ("hot-dog", "hot dog"),        # punctuation inside a word becomes a space
    ("black / white", "black white"),
    ("3.5", "3.5"),                # a decimal point stays
    ("none", "0"),
    ("an apple.", "apple"),
])
def test_official_normalization(raw, normalized):
    assert normalize_answer(raw) == normalized


def test_vqa_accuracy_counts_humans_over_leave_one_out_subsets():
    # k humans said it: each of the 10 subsets of 9 holds k (or k - 1) of them; min(#/3, 1) averaged.
    others = ["cat"] * 10
    for k, expected in [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)]:
        answers = ["dog"] * k + others[k:]
        assert vqa_accuracy("dog", answers) == pytest.approx(expected), k


def test_vqa_accuracy_normalizes_when_humans_disagree():
    answers = ["2"] * 4 + ["3"] * 6
    assert vqa_accuracy("two", answers) == pytest.approx(1.0)
    assert vqa_accuracy("Two.", answers) == pytest.approx(1.0)
    assert vqa_accuracy("a dog", ["dog"] * 3 + ["cat"] * 7) == pytest.approx(0.9)
    assert vqa_accuracy(" DOG ", ["dog"] * 3 + ["cat"] * 7) == pytest.approx(0.9)


def test_vqa_accuracy_keeps_the_official_quirk_for_unanimous_answers():
    # The official code normalises only when the 10 answers differ: "two" vs ten "2" scores 0,
    # and so does "YES" (or "yes.") vs ten "yes": nothing is lower-cased or stripped of a period.
    assert vqa_accuracy("two", ["2"] * 10) == 0.0
    assert vqa_accuracy("2", ["2"] * 10) == 1.0
    assert vqa_accuracy("YES", ["yes"] * 10) == 0.0
    assert vqa_accuracy(" yes\n", ["yes"] * 10) == 1.0     # only whitespace is cleaned


# (prediction, human answers, accuracy of the official vqaEval.py). The accuracies were computed by
# running GT-Vision-Lab/VQA's PythonEvaluationTools/vqaEvaluation/vqaEval.py (master, 2021-03-11)
# on exactly these cases, each answer a record with its own answer_id.
Y = ["yes"] * 10
OFFICIAL = [
    ("yes", Y, 1.0), ("Yes", Y, 0.0), ("YES", Y, 0.0), ("yes.", Y, 0.0), (" yes ", Y, 1.0),
    ("yes\n", Y, 1.0), ("no", Y, 0.0), ("two", ["2"] * 10, 0.0), ("2", ["2"] * 10, 1.0),
    ("two", ["2"] * 9 + ["3"], 1.0), ("Two.", ["2"] * 4 + ["3"] * 6, 1.0),
    ("a dog", ["dog"] * 3 + ["cat"] * 7, 0.9), ("the Dog", ["dog"] * 3 + ["cat"] * 7, 0.9),
    ("a dog", ["a dog"] * 10, 1.0), ("dog", ["a dog"] * 10, 0.0),
    ("dont", ["don't"] * 5 + ["no"] * 5, 1.0), ("don't", ["dont"] * 5 + ["no"] * 5, 1.0),
    ("1,000", ["1000"] * 6 + ["100"] * 4, 1.0), ("1000", ["1,000"] * 6 + ["1 000"] * 4, 1.0),
    ("hot-dog", ["hot dog"] * 7 + ["hotdog"] * 3, 1.0),
    ("hot dog", ["hot-dog"] * 7 + ["sandwich"] * 3, 1.0),
    ("black / white", ["black and white"] * 5 + ["black white"] * 5, 1.0),
    ("black/white", ["black and white"] * 5 + ["black white"] * 5, 1.0),
    ("3.5", ["3.5"] * 4 + ["3"] * 6, 1.0), ("3.", ["3"] * 4 + ["4"] * 6, 1.0),
    ("none", ["0"] * 5 + ["none"] * 5, 1.0), ("Zero", ["0"] * 5 + ["none"] * 5, 1.0),
    ("Red", ["red"] * 9 + ["Red"], 1.0), ("red", ["Red"] * 2 + ["red"] * 8, 1.0),
    ("it's red!", ["red"] * 8 + ["it's red"] * 2, 0.6), ("it is red", ["red"] * 8 + ["it's red"] * 2, 0.0),
    ("isnt", ["isn't"] * 3 + ["is"] * 7, 0.9), ("Im", ["I'm"] * 3 + ["me"] * 7, 0.0),
    ("im", ["i'm"] * 4 + ["me"] * 6, 0.0), ("yes", ["yes"] * 2 + ["no"] * 8, 0.6),
    ("yes", ["yes"] * 1 + ["no"] * 9, 0.3), ("no", ["yes"] * 3 + ["no"] * 7, 1.0),
    ("tennis racket", ["tennis racket"] * 3 + ["racket"] * 4 + ["racquet"] * 3, 0.9),
    ("tennis racquet", ["tennis racket"] * 3 + ["racket"] * 4 + ["tennis racquet"] * 3, 0.9),
    ("", ["yes"] * 5 + ["no"] * 5, 0.0), ("", [""] * 10, 1.0),
    ("(left)", ["left"] * 6 + ["right"] * 4, 1.0), ("left side", ["left"] * 6 + ["left side"] * 4, 1.0),
    ("on the left", ["left"] * 6 + ["on left"] * 4, 1.0), ("a.m.", ["am"] * 5 + ["morning"] * 5, 1.0),
    ("10:30", ["10:30"] * 6 + ["1030"] * 4, 1.0), ("10:30", ["10:30"] * 10, 1.0),
    ("ten", ["10"] * 6 + ["10:00"] * 4, 1.0), ("an apple.", ["apple"] * 3 + ["apples"] * 7, 0.9),
    ("Apple", ["apple"] * 10, 0.0), ("yes\tno", ["yes no"] * 4 + ["yes"] * 6, 1.0),
]


def test_vqa_accuracy_equals_the_official_code_on_every_case():
    ours = [vqa_accuracy(prediction, answers) for prediction, answers, _ in OFFICIAL]
    official = [accuracy for _, _, accuracy in OFFICIAL]
    assert [pytest.approx(v, abs=1e-12) for v in official] == ours
    assert round(100 * sum(ours) / len(ours), 2) == 74.31      # the official overall accuracy


def test_mean_by_group_and_exact_match():
    scores = mean_by_group("exact_match", [1.0, 0.0, 1.0, 1.0], ["plain", "plain", "pirate", ""])
    assert scores == {"exact_match": 75.0, "exact_match[pirate]": 100.0, "exact_match[plain]": 50.0}
    assert exact_match("dax", ["dax"]) == 1.0
    assert exact_match("dax ", ["dax"]) == 0.0
    assert mean_by_group("accuracy", [], []) == {}


@java
def test_cider_on_a_hand_computed_case():
    """CIDEr-D as pycocoevalcap defines it, computed by hand for two images.

    idf: every n-gram occurs in the references of exactly one of the 2 images, so each weight
    is log(2) - log(1) = log 2 and cancels in the cosines.
    image 1, "red circle" vs "red circle left":
        unigrams cos = 2 / (sqrt 2 * sqrt 3);  bigrams cos = 1 / (1 * sqrt 2);  3-, 4-grams 0
        length penalty exp(-(1 - 2)^2 / (2 * 6^2))  (lengths in bigrams: 1 vs 2)
        score = 10 * (sum of the 4 cosines) / 4 * penalty
    image 2, identical "blue square": cosines 1, 1, 0, 0 -> 10 * 2 / 4 = 5
    """
    from eval.metrics.caption import caption_scores

    image1 = 10 * (2 / math.sqrt(6) + 1 / math.sqrt(2)) / 4 * math.exp(-1 / 72)
    expected = 100 * (image1 + 5.0) / 2      # reported x 100
    scores, _ = caption_scores({"1": "red circle", "2": "blue square"},
                               {"1": ["red circle left"], "2": ["blue square"]})
    assert scores["CIDEr"] == pytest.approx(expected, rel=1e-6)
    assert set(scores) >= {"BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"}
    assert 0 < scores["METEOR"] < 100 and scores["ROUGE-L"] > 50


@java
def test_caption_scores_tokenize_like_coco_and_survive_empty_predictions():
    from eval.metrics.caption import caption_scores

    refs = {"1": ["A man riding a horse on the beach."], "2": ["Two dogs play in the snow."]}
    perfect, _ = caption_scores({"1": "a man riding a horse on the beach", "2": "two dogs, play in the snow!"},
                                refs, scorers=["BLEU", "CIDEr"])
    assert perfect["BLEU-4"] == pytest.approx(100.0, abs=1e-3)   # case and punctuation do not count
    empty, notes = caption_scores({"1": "", "2": "   "}, refs, scorers=["BLEU", "CIDEr", "SPICE"])
    assert empty["CIDEr"] == 0.0 and empty["BLEU-1"] < 1e-6
    assert all("SPICE" in n for n in notes) or "SPICE" in empty


def test_missing_java_names_what_to_install(monkeypatch):
    import eval.metrics.caption as caption

    monkeypatch.setattr(caption.shutil, "which", lambda name: None)
    with pytest.raises(EvalError, match="default-jre-headless"):
        caption.caption_scores({"1": "a"}, {"1": ["a"]})


@pytest.mark.parametrize("postprocess, yes_no", [("lowercase", 100.0), ("none", 0.0)])
def test_vqa_postprocessing_is_a_named_step_recorded_in_results(tmp_path, fake_model, vqa_dir,
                                                                postprocess, yes_no):
    import json

    from eval.run import run
    from eval.settings import build

    settings = build({}, {"model": "unused", "out": str(tmp_path), "progress": False,
                          "data": {"path": str(vqa_dir)}, "shots": [0], "trials": 1,
                          "options": {"postprocess": postprocess}}, select=["vqav2"])
    run(settings, model=fake_model(answer=lambda prompt: "Yes"))
    entry = json.loads((tmp_path / "results.json").read_text())["tasks"]["vqav2"]
    # The humans all said "yes": only the lower-cased prediction equals it.
    assert entry["scores"]["0"]["mean"]["accuracy[yes/no]"] == yes_no
    assert f"predictions post-processed before scoring: {postprocess} (options.postprocess)" in entry["notes"]
    record = entry["predictions"][0]
    assert record["output"] == "Yes"
    assert record["prediction"] == ("yes" if postprocess == "lowercase" else "Yes")


def test_unknown_vqa_postprocessing_is_refused(tmp_path, vqa_dir):
    from eval.settings import build
    from eval.tasks import task_class

    given = {"model": "unused", "out": str(tmp_path), "data": {"path": str(vqa_dir)},
             "options": {"postprocess": "titlecase"}}
    with pytest.raises(EvalError, match="options.postprocess 'titlecase' is not one of"):
        build({}, given, select=["vqav2"])
    settings = build({}, {**given, "options": {}}, select=["vqav2"])
    settings.tasks[0].options["postprocess"] = "titlecase"     # set after the settings were checked
    with pytest.raises(EvalError, match="options.postprocess 'titlecase' is not one of"):
        task_class("vqav2")(settings.tasks[0])
