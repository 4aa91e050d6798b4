"""Demonstration selection: RICES returns the nearest demos (most similar last) and caches
features on disk; random selection is reproducible and never shows the query's image."""

from __future__ import annotations

import random

import pytest
from PIL import Image

from eval.errors import EvalError
from eval.features import FeatureCache
from eval.queries import Example, ImageRef
from eval.selection import RandomSelector, RicesSelector


def example(name: str, rgb) -> Example:
    return Example(id=name, image=ImageRef(name, pil=Image.new("RGB", (8, 8), rgb)), fields={})


POOL = [example("red", (250, 0, 0)), example("dark-red", (150, 0, 0)), example("green", (0, 250, 0)),
        example("blue", (0, 0, 250)), example("navy", (0, 0, 120)), example("teal", (0, 120, 120))]


def test_rices_returns_the_nearest_demos_most_similar_last(tmp_path, fake_model):
    # Features are mean RGB; cosine similarity compares hue, so a reddish query is nearest to
    # red and dark-red (both exactly (1, 0, 0) in direction), then nothing else is close.
    model = fake_model()
    selector = RicesSelector(FeatureCache(model, tmp_path, progress=False))
    reddish = example("q1", (200, 10, 0))
    bluish = example("q2", (0, 40, 200))
    chosen = selector.select([reddish, bluish], POOL, 3, random.Random(0))
    assert {e.id for e in chosen[0][-2:]} == {"red", "dark-red"}
    assert {e.id for e in chosen[1][-2:]} == {"blue", "navy"}
    assert chosen[1][0].id == "teal"                     # the third nearest comes first


def test_rices_skips_the_query_itself(tmp_path, fake_model):
    selector = RicesSelector(FeatureCache(fake_model(), tmp_path, progress=False))
    chosen = selector.select([POOL[3]], POOL, 2, random.Random(0))       # blue: navy, then teal
    assert [e.id for e in chosen[0]] == ["teal", "navy"]


def test_features_are_cached_on_disk(tmp_path, fake_model):
    first = fake_model()
    FeatureCache(first, tmp_path, progress=False).get([e.image for e in POOL])
    assert first.feature_calls == 1 and len(list(tmp_path.glob("image-features-*.pt"))) == 1
    second = fake_model()
    features = FeatureCache(second, tmp_path, progress=False).get([e.image for e in reversed(POOL)])
    assert second.feature_calls == 0                     # all read back from the cache file
    assert features.shape == (len(POOL), 3)
    assert features[0].tolist() == pytest.approx([0, 0.7071, 0.7071], abs=1e-4)  # teal, unit norm


def test_random_selection_is_reproducible_and_excludes_the_query(tmp_path):
    selector = RandomSelector()
    a = selector.select(POOL[:2], POOL, 4, random.Random("s"))
    b = selector.select(POOL[:2], POOL, 4, random.Random("s"))
    assert [[e.id for e in row] for row in a] == [[e.id for e in row] for row in b]
    assert all(q.id not in [e.id for e in row] for q, row in zip(POOL[:2], a, strict=True))
    with pytest.raises(EvalError, match="train split has only 6"):
        selector.select(POOL[:1], POOL, 6, random.Random(0))
