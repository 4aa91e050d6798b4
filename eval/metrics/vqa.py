"""VQA accuracy, as the official VQA evaluation (vqaEval.py) computes it.

An answer is correct for a subset of 9 of the 10 human answers when at least 3 of them match
it: accuracy = mean over the 10 leave-one-out subsets of min(#matches / 3, 1). Exactly as in
the official code (GT-Vision-Lab/VQA, PythonEvaluationTools/vqaEvaluation/vqaEval.py):
newlines and tabs become spaces and both ends are stripped; then, only when the human answers
are not all identical, the prediction and every human answer go through the official
normalisation (punctuation, lower-casing, number words to digits, articles dropped,
contractions restored). When all humans gave the same answer, the prediction must equal it
character for character: 'Yes' scores 0 against ten 'yes'. Clean-up of model output (such as
lower-casing) belongs to the task's prediction post-processing, not here.
"""

from __future__ import annotations

import re
from typing import Sequence

CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've",
    "hasnt": "hasn't", "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've",
    "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've",
    "I'dve": "I'd've", "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've",
    "it'dve": "it'd've", "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't",
    "mustve": "must've", "neednt": "needn't", "notve": "not've", "oclock": "o'clock",
    "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at",
    "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's",
    "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've",
    "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's",
    "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've",
    "youll": "you'll", "youre": "you're", "youve": "you've",
}
NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
           "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = {"a", "an", "the"}
PUNCTUATION = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@",
               "`", ",", "?", "!"]
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")   # a period not followed by a digit
COMMA_STRIP = re.compile(r"(\d)(,)(\d)")           # a thousands separator


def normalize_punctuation(text: str) -> str:
    """Drop punctuation next to a space (or anywhere in a number like 1,000), else make it a space."""
    out = text
    for p in PUNCTUATION:
        if (p + " " in text or " " + p in text) or COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    # The official code passes re.UNICODE (32) as sub's count: at most 32 periods go.
    return PERIOD_STRIP.sub("", out, count=re.UNICODE)


def normalize_digits_articles(text: str) -> str:
    """Lower-case; number words 0-10 to digits; drop a/an/the; restore contractions."""
    words = [NUMBERS.get(w, w) for w in text.lower().split()]
    words = [CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES]
    return " ".join(words)


def normalize_answer(text: str) -> str:
    """The official normalisation of one answer (applied only when the humans disagree)."""
    return normalize_digits_articles(normalize_punctuation(_clean(text)))


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """Accuracy in [0, 1] of one prediction against the human answers (10 in VQAv2 / OK-VQA),
    the official computation step for step (see the module docstring)."""
    if not answers:
        raise ValueError("a VQA question needs at least one human answer")
    gts = [_clean(a) for a in answers]
    pred = _clean(prediction)
    if len(set(gts)) > 1:
        gts = [normalize_digits_articles(normalize_punctuation(a)) for a in gts]
        pred = normalize_digits_articles(normalize_punctuation(pred))
    scores = []
    for left_out in range(len(gts)):    # the official code leaves out one answer record each time
        matches = sum(1 for j, a in enumerate(gts) if j != left_out and a == pred)
        scores.append(min(1.0, matches / 3.0))
    return sum(scores) / len(scores)
