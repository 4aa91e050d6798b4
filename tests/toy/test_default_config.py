"""The shapes world's default (configs/toy.yaml, what the demo trains) is told nothing about the
world: no stand-in token, no attribute word, no token list or slot role for its prefix head.
Only the ablation configs/toy-perslot.yaml is given the stand-in groups."""

from __future__ import annotations

from pathlib import Path

import yaml

from frozen.toy.captions import FRENCH
from frozen.toy.render import COLORS, POSITIONS, SHAPES, SIZES
from frozen.toy.standins import STANDIN_TOKENS

ROOT = Path(__file__).resolve().parents[2]
WORLD_WORDS = {*SIZES, *COLORS, *SHAPES, *POSITIONS, *FRENCH.values()}


def _strings(node) -> list[str]:
    """Every string in a parsed YAML tree, keys included."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*_strings(key), *_strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / "configs" / name).read_text())


def test_default_head_names_no_world_specific_tokens():
    config = _load("toy.yaml")
    frozen = config["model"]["frozen"]
    assert frozen["prefix_head"] in ("linear", "mlp", "vocabulary")
    assert "vocabulary" not in frozen.get("prefix_head_options", {})
    words = {word for text in _strings(config) for word in text.replace("/", " ").split()}
    assert not [s for s in _strings(config) if any(token in s for token in STANDIN_TOKENS)]
    assert not words & WORLD_WORDS, words & WORLD_WORDS


def test_the_ablation_is_given_the_standin_groups():
    slots = _load("toy-perslot.yaml")["model"]["frozen"]["prefix_head_options"]["vocabulary"]
    assert sorted(token for slot in slots for token in slot) == sorted(STANDIN_TOKENS)
