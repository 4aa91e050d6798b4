"""Caption metrics through pycocoevalcap, exactly as the COCO caption evaluation computes them.

Predictions and references go through the Stanford PTB tokenizer (Java), then BLEU-1..4,
METEOR (Java), ROUGE-L, CIDEr (CIDEr-D: IDF over the evaluated images' references, sigma 6,
clipped counts) and SPICE (Java + Stanford CoreNLP models, only when those are installed).
Scores are reported x 100, as in papers (COCO CIDEr 0.77 -> 77.0).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import EvalError

JAVA_HINT = ("Java is needed for the caption metrics (pycocoevalcap's PTB tokenizer, METEOR and "
             "SPICE) but no `java` is on PATH: install a Java runtime, e.g. "
             "`apt-get install -y default-jre-headless` (Java 8 or newer)")


def require_java() -> None:
    """Raise EvalError naming what to install when Java is missing or does not start."""
    java = shutil.which("java")
    if java is None:
        raise EvalError(JAVA_HINT)
    try:
        subprocess.run([java, "-version"], capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        raise EvalError(f"{JAVA_HINT} (found {java}, but it does not run: {err})") from None


def spice_models_dir() -> Path:
    import pycocoevalcap.spice as spice

    return Path(spice.__file__).parent / "lib"


def spice_available() -> bool:
    """SPICE runs offline only when Stanford CoreNLP 3.6.0 (and its models) sit in its lib folder."""
    lib = spice_models_dir()
    return all((lib / name).is_file() for name in ("stanford-corenlp-3.6.0.jar",
                                                    "stanford-corenlp-3.6.0-models.jar"))


SPICE_MISSING = ("SPICE skipped: it needs stanford-corenlp-3.6.0.jar and "
                 "stanford-corenlp-3.6.0-models.jar in {dir} (pycocoevalcap would download them "
                 "from nlp.stanford.edu on first use)")


def tokenize(captions: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """PTB-tokenize, lower-case and strip punctuation, as the COCO evaluation does."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    ids = list(captions)
    # Empty or whitespace-only lines would shift the tokenizer's line-by-line output.
    data = {i: [{"caption": " ".join(c.split()) or "."} for c in captions[i]] for i in ids}
    tokenized = PTBTokenizer().tokenize(data)
    missing = [i for i in ids if len(tokenized.get(i, [])) != len(captions[i])]
    if missing:
        raise EvalError(f"the PTB tokenizer returned no output for {len(missing)} caption(s) "
                        f"(e.g. id {missing[0]!r}); is Java working?")
    return tokenized


SCORERS = ("BLEU", "METEOR", "ROUGE-L", "CIDEr", "SPICE")


def caption_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                   scorers: Sequence[str] = SCORERS) -> tuple[dict[str, float], list[str]]:
    """Corpus-level scores (x 100) and notes (e.g. SPICE skipped). Keys: ids of the images.

    scorers: which of SCORERS to run; "BLEU" gives BLEU-1..4. SPICE runs when its Stanford
    CoreNLP jars are installed and is skipped with a note otherwise.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if set(predictions) != set(references):
        raise ValueError("predictions and references must have the same ids")
    if not predictions:
        return {}, []
    for i, refs in references.items():
        if not refs:
            raise EvalError(f"image {i!r} has no reference captions")
    require_java()
    ids = sorted(predictions)
    res = tokenize({i: [predictions[i]] for i in ids})
    gts = tokenize({i: list(references[i]) for i in ids})

    unknown = [name for name in scorers if name not in SCORERS]
    if unknown:
        raise EvalError(f"unknown caption metric(s) {unknown}; expected some of {', '.join(SCORERS)}")
    scores: dict[str, float] = {}
    notes = []
    if "BLEU" in scorers:
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        for n, value in enumerate(bleu, start=1):
            scores[f"BLEU-{n}"] = 100.0 * value
    if "METEOR" in scorers:
        scores["METEOR"] = 100.0 * _meteor(gts, res)
    if "ROUGE-L" in scorers:
        scores["ROUGE-L"] = 100.0 * Rouge().compute_score(gts, res)[0]
    if "CIDEr" in scorers:
        scores["CIDEr"] = 100.0 * Cider().compute_score(gts, res)[0]
    if "SPICE" in scorers:
        if spice_available():
            from pycocoevalcap.spice.spice import Spice

            scores["SPICE"] = 100.0 * Spice().compute_score(gts, res)[0]
        else:
            notes.append(SPICE_MISSING.format(dir=spice_models_dir()))
    return {k: float(v) for k, v in scores.items()}, notes


@functools.lru_cache(maxsize=1)
def _meteor_scorer():
    """One METEOR process for the whole run: starting it loads ~60 MB of paraphrase tables
    (about 12 s of CPU), so it is started once and reused for every trial."""
    from pycocoevalcap.meteor.meteor import Meteor

    return Meteor()


def _meteor(gts, res) -> float:
    try:
        return _meteor_scorer().compute_score(gts, res)[0]
    except (ValueError, BrokenPipeError) as err:
        _meteor_scorer.cache_clear()
        raise EvalError(f"METEOR failed ({err}); the METEOR jar needs Java with about 2 GB of "
                        f"free memory") from None
