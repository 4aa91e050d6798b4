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
    # The official code normalises only when the 10 answers differ: "two" vs ten "2" scores 0.
    assert vqa_accuracy("two", ["2"] * 10) == 0.0
    assert vqa_accuracy("2", ["2"] * 10) == 1.0
    assert vqa_accuracy("YES", ["yes"] * 10) == 1.0     # the comparison is lower-cased anyway


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
