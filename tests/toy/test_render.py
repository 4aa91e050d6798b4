"""The renderer and attribute sampling against the shapes-world contract."""

import numpy as np
import pytest

from frozen.toy.render import (
    ALL_ATTRIBUTES,
    BASE_RGB,
    HELD_OUT,
    SHAPES,
    Attributes,
    black_image,
    render,
    render_attributes,
    sample_attributes,
    sample_scene,
    split_attributes,
)


def object_mask(pixels: np.ndarray) -> np.ndarray:
    return (pixels != pixels[0, 0]).any(-1)


def test_eighty_combinations_and_splits():
    assert len(ALL_ATTRIBUTES) == len(set(ALL_ATTRIBUTES)) == 80
    assert len(split_attributes("train")) == 72
    held = split_attributes("heldout")
    assert len(held) == 8
    assert {(a.color, a.shape) for a in held} == set(HELD_OUT) == {("purple", "triangle"), ("yellow", "diamond")}


def test_train_sampler_never_yields_held_out_pairs():
    rng = np.random.default_rng(0)
    seen = {sample_attributes(rng, "train") for _ in range(3000)}
    assert seen == set(split_attributes("train"))
    assert all(sample_attributes(rng, "heldout").is_held_out for _ in range(200))
    assert all(not sample_attributes(rng, shape=s).is_held_out for s in SHAPES for _ in range(50))
    with pytest.raises(ValueError, match="split"):
        sample_attributes(rng, "test")


def test_invalid_attribute_names_the_field():
    with pytest.raises(ValueError, match="Attributes.color"):
        Attributes("big", "orange", "circle", "left")


@pytest.mark.parametrize("attributes", ALL_ATTRIBUTES[::3])
def test_render_matches_contract(attributes):
    rng = np.random.default_rng(hash(attributes) % 2**32)
    for _ in range(5):
        scene = sample_scene(rng, attributes)
        image = render(scene)
        assert image.mode == "RGB" and image.size == (64, 64)
        pixels = np.asarray(image).astype(int)
        mask = object_mask(pixels)
        background = pixels[~mask]
        assert (background == background[0, 0]).all() and 215 <= background[0, 0] <= 255
        colors = np.unique(pixels[mask], axis=0)
        assert len(colors) == 1, "one filled object, one color"
        jitter = colors[0] - np.array(BASE_RGB[attributes.color])
        assert (np.abs(jitter) <= 15).all()
        ys, xs = np.nonzero(mask)
        r = (xs.max() - xs.min()) // 2
        assert xs.max() - xs.min() == ys.max() - ys.min() == 2 * r == 2 * scene.radius
        cx, cy = (xs.max() + xs.min()) // 2, (ys.max() + ys.min()) // 2
        assert (cx, cy) == (scene.cx, scene.cy)
        assert (5 <= r <= 8) if attributes.size == "small" else (13 <= r <= 16)
        assert (18 <= cx <= 24) if attributes.position == "left" else (40 <= cx <= 46)
        assert 18 <= cy <= 46


def test_shapes_are_distinguishable_by_their_pixels():
    def mask(shape):
        return object_mask(np.asarray(render(sample_scene(0, Attributes("big", "blue", shape, "left")))))

    square, circle, triangle, diamond = (mask(s) for s in ("square", "circle", "triangle", "diamond"))
    assert square.sum() > circle.sum() > triangle.sum() == diamond.sum()
    ys, xs = np.nonzero(triangle)
    assert triangle[ys.min()].sum() == 1 and triangle[ys.max()].sum() == xs.max() - xs.min() + 1
    ys, xs = np.nonzero(diamond)
    middle = (ys.min() + ys.max()) // 2
    assert diamond[ys.min()].sum() == diamond[ys.max()].sum() == 1
    assert diamond[middle].sum() == xs.max() - xs.min() + 1


def test_draws_are_integers_in_range_and_cover_them():
    rng = np.random.default_rng(1)
    scenes = [sample_scene(rng, sample_attributes(rng, "any")) for _ in range(4000)]
    assert {s.background for s in scenes} == set(range(215, 256))
    assert {s.radius for s in scenes if s.attributes.size == "small"} == set(range(5, 9))
    assert {s.radius for s in scenes if s.attributes.size == "big"} == set(range(13, 17))
    assert {s.cx for s in scenes if s.attributes.position == "left"} == set(range(18, 25))
    assert {s.cx for s in scenes if s.attributes.position == "right"} == set(range(40, 47))
    assert {s.cy for s in scenes} == set(range(18, 47))
    red = np.array([s.rgb for s in scenes if s.attributes.color == "red"])
    assert red[:, 0].min() == 205 and red[:, 0].max() == 235  # 220 +- 15
    assert all(isinstance(v, int) for s in scenes[:10] for v in (s.background, s.radius, s.cx, s.cy, *s.rgb))


def test_seeded_rendering_is_deterministic():
    attributes = Attributes("small", "yellow", "triangle", "right")
    assert render_attributes(attributes, 7).tobytes() == render_attributes(attributes, 7).tobytes()
    assert render_attributes(attributes, 7).tobytes() != render_attributes(attributes, 8).tobytes()


def test_black_image():
    image = black_image()
    assert image.mode == "RGB" and image.size == (64, 64)
    assert not np.asarray(image).any()
