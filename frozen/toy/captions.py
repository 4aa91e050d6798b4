"""The caption of an attribute set in each of the five styles of the shapes world."""

from __future__ import annotations

from frozen.toy.render import Attributes

STYLES = ("plain", "shout", "pirate", "french", "terse")

FRENCH = {
    "small": "petit",
    "big": "grand",
    "red": "rouge",
    "green": "vert",
    "blue": "bleu",
    "yellow": "jaune",
    "purple": "violet",
    "circle": "cercle",
    "square": "carré",
    "triangle": "triangle",
    "diamond": "losange",
    "left": "gauche",
    "right": "droite",
}


def caption(attributes: Attributes, style: str = "plain") -> str:
    """The caption of ``attributes`` in ``style`` (one of ``STYLES``)."""
    a = attributes
    if style == "plain":
        return f"a {a.size} {a.color} {a.shape} on the {a.position}"
    if style == "shout":
        return caption(a, "plain").upper() + "!"
    if style == "pirate":
        return f"arr, a {a.size} {a.color} {a.shape} be on the {a.position}, matey"
    if style == "french":
        return f"un {FRENCH[a.size]} {FRENCH[a.shape]} {FRENCH[a.color]} à {FRENCH[a.position]}"
    if style == "terse":
        return f"{a.color} {a.shape}, {a.size}, {a.position}"
    raise ValueError(f"style={style!r}: expected one of {STYLES}")
