"""A stand-in for FrozenModel with the same generate / image_features signatures, for tests of
the loop, selection and reports where a real model would only add time."""

from __future__ import annotations

import numpy as np
import torch

from frozen import SamplingOptions


class FakeModel:
    """Stands in for FrozenModel where only the loop is under test.

    generate: the answer function maps one prompt (list of items) to its continuation; every
    call is recorded. image_features: the mean RGB of each image (so similar colors are near).
    """

    image_transform = None

    def __init__(self, answer=lambda prompt: "a photo", fail_after: int | None = None):
        self.answer = answer
        self.fail_after = fail_after
        self.calls: list[list[list]] = []
        self.kwargs: list[dict] = []
        self.feature_calls = 0

    def generate(self, prompts, options=None, *, images=None, return_full_text=False,
                 truncation="error", batch_size=None, **overrides):
        options = (options or SamplingOptions()).replace(**overrides)
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls.append(prompts)
        self.kwargs.append(options.to_dict())
        return [self.answer(p) for p in prompts]

    def image_features(self, images):
        self.feature_calls += 1
        rgb = [np.asarray(img.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(0) for img in images]
        return torch.from_numpy(np.stack(rgb))                                    # (N, 3)

    def trainable_state_dict(self):
        return {"weight": torch.ones(2)}
