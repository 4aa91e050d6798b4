"""Captions in every style, exactly as the shapes-world contract's table."""

import pytest

from frozen.toy.captions import STYLES, caption
from frozen.toy.render import ALL_ATTRIBUTES, Attributes

BIG_RED_CIRCLE_LEFT = Attributes("big", "red", "circle", "left")
SMALL_PURPLE_SQUARE_RIGHT = Attributes("small", "purple", "square", "right")


def test_table_example_row():
    assert caption(BIG_RED_CIRCLE_LEFT) == "a big red circle on the left"
    assert caption(BIG_RED_CIRCLE_LEFT, "plain") == "a big red circle on the left"
    assert caption(BIG_RED_CIRCLE_LEFT, "shout") == "A BIG RED CIRCLE ON THE LEFT!"
    assert caption(BIG_RED_CIRCLE_LEFT, "pirate") == "arr, a big red circle be on the left, matey"
    assert caption(BIG_RED_CIRCLE_LEFT, "french") == "un grand cercle rouge à gauche"
    assert caption(BIG_RED_CIRCLE_LEFT, "terse") == "red circle, big, left"


def test_other_attribute_sets():
    a = SMALL_PURPLE_SQUARE_RIGHT
    assert caption(a, "plain") == "a small purple square on the right"
    assert caption(a, "shout") == "A SMALL PURPLE SQUARE ON THE RIGHT!"
    assert caption(a, "pirate") == "arr, a small purple square be on the right, matey"
    assert caption(a, "french") == "un petit carré violet à droite"
    assert caption(a, "terse") == "purple square, small, right"
    b = Attributes("big", "yellow", "diamond", "left")
    assert caption(b, "french") == "un grand losange jaune à gauche"
    c = Attributes("small", "green", "triangle", "left")
    assert caption(c, "french") == "un petit triangle vert à gauche"
    assert caption(Attributes("big", "blue", "circle", "right"), "french") == "un grand cercle bleu à droite"


def test_captions_are_distinct_per_style():
    for style in STYLES:
        assert len({caption(a, style) for a in ALL_ATTRIBUTES}) == 80


def test_unknown_style():
    with pytest.raises(ValueError, match="style"):
        caption(BIG_RED_CIRCLE_LEFT, "poetic")
