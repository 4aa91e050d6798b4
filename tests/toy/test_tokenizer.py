"""The byte-level BPE tokenizer: exact round trip, single-token words and stand-ins."""

import numpy as np

from frozen.toy.captions import STYLES, caption
from frozen.toy.corpus import vocabulary_texts
from frozen.toy.prompts import NONCE_WORDS, sample_binding_episode, sample_instruction_episode, sample_style_episode
from frozen.toy.render import ALL_ATTRIBUTES
from frozen.toy.standins import STANDIN_TOKENS, standin

ODD_STRINGS = ["à", "carré", "!", ",", "\n", ":", ".", "  spaced  out\n\n", "naïve café — 7 ünïcödé ✓", "<image>", ""]


def roundtrip(tokenizer, text):
    return tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_round_trip_is_exact(shapes_tokenizer):
    for text in vocabulary_texts() + ODD_STRINGS:
        assert roundtrip(shapes_tokenizer, text) == text


def test_round_trip_of_text_only_prompts(shapes_tokenizer):
    rng = np.random.default_rng(0)
    for _ in range(20):
        for episode in (
            sample_style_episode(rng, STYLES[int(rng.integers(5))], 4, image=standin),
            sample_instruction_episode(rng, STYLES[int(rng.integers(5))], 4, image=standin),
            sample_binding_episode(rng, 4, image=standin),
        ):
            text = "".join(episode.prompt) + episode.answer
            assert roundtrip(shapes_tokenizer, text) == text


def test_every_word_is_one_token(shapes_tokenizer):
    for text in [caption(a, s) for a in ALL_ATTRIBUTES[:8] for s in STYLES]:
        pieces = shapes_tokenizer.tokenize(text)
        assert len(pieces) == len(text.replace(",", " ,").replace("!", " !").split())
    for name in NONCE_WORDS:
        assert len(shapes_tokenizer.tokenize(f" {name}")) == 1


def test_standins_are_single_special_tokens(shapes_tokenizer):
    ids = shapes_tokenizer(standin(ALL_ATTRIBUTES[0]), add_special_tokens=False)["input_ids"]
    assert len(ids) == 4
    assert set(STANDIN_TOKENS) <= set(shapes_tokenizer.all_special_tokens)
    assert shapes_tokenizer.decode(ids, skip_special_tokens=True) == ""


def test_bos_eos_pad(shapes_tokenizer):
    tok = shapes_tokenizer
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}) == 3
    assert tok("a big")["input_ids"][0] == tok.bos_token_id
    assert tok("a big", add_special_tokens=False)["input_ids"][0] != tok.bos_token_id


def test_binding_phrases_are_single_tokens(shapes_tokenizer):
    tokens = shapes_tokenizer.tokenize("this is a dax.\n")
    assert tokens[0] == "this is a dax" and len(tokens) == 3
    assert shapes_tokenizer.tokenize("Q: what is this? A: this is a") == ["Q: what is this? A: this is a"]
    assert shapes_tokenizer.tokenize("this is a circle.")[0] == "this is a"
