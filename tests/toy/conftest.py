"""Shared fixtures of the shapes-world tests."""

import pytest

from frozen.toy.corpus import vocabulary_texts
from frozen.toy.tokenizer import train_tokenizer


@pytest.fixture(scope="session")
def shapes_tokenizer():
    """A freshly trained shapes-world tokenizer (what build_lm trains)."""
    return train_tokenizer(vocabulary_texts())
