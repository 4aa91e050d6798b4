"""Few-shot evaluation of Frozen models: captioning, VQA, fast binding and the shapes world.

Run it as ``python -m eval --model DIR --task coco --data PATH`` or with a YAML task config
(``python -m eval --config configs/eval/coco.yaml``) from a checkout; installed with
``pip install .``, the package is `frozen_eval` (``python -m frozen_eval ...``): its modules
import each other relatively, so either name works. Layout:

    tasks/      one small class per benchmark behind one `Task` interface, and the registry
    templates   prompt templates from config (``<image>Output:{caption}<|endofchunk|>``)
    selection   demonstration selection: random or RICES (nearest by image features)
    features    image features of the model, cached on disk (for RICES)
    loop        the one shared few-shot loop: shots x trials x batched generation
    log         the resumable JSONL log of finished queries
    metrics/    CIDEr / BLEU / METEOR / SPICE (pycocoevalcap), VQA accuracy, exact match
    settings    run and task settings: defaults, YAML, command-line overrides, validation
    run         loads the model, evaluates each task, writes the outputs
    report      results.json and report.html (tables, SVG plots, thumbnails)

Only the public API of `frozen` is used: `FrozenModel.from_pretrained`, `generate` with
list-of-items prompts, and `image_features`.
"""

from .errors import EvalError

__all__ = ["EvalError"]
