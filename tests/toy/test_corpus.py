"""The language-model corpus: deterministic, complete, and masked as designed."""

import itertools

import pytest

from frozen.toy.build_lm import DocumentEncoder
from frozen.toy.captions import STYLES, caption
from frozen.toy.corpus import CONTEXT, IMAGE, TARGET, CorpusMix, document_text, documents
from frozen.toy.prompts import BINDING_QUERY, NONCE_WORDS
from frozen.toy.render import ALL_ATTRIBUTES
from frozen.toy.standins import standin


@pytest.fixture(scope="module")
def corpus():
    return list(itertools.islice(documents(0), 3000))


def test_deterministic_per_seed(corpus):
    assert list(itertools.islice(documents(0), 200)) == corpus[:200]
    assert list(itertools.islice(documents(1), 200)) != corpus[:200]


def test_holds_every_combination_style_and_format(corpus):
    text = "\n".join(document_text(d) for d in corpus)
    for attributes in ALL_ATTRIBUTES:  # held-out pairs included
        assert standin(attributes) in text
    for style in STYLES:
        assert f"Caption in {style}:" in text
        assert caption(ALL_ATTRIBUTES[0], style) in text
    assert BINDING_QUERY in text
    assert all(f"this is a {name}." in text for name in NONCE_WORDS)
    kinds = {"binding" if BINDING_QUERY in document_text(d) else "other" for d in corpus}
    assert kinds == {"binding", "other"}


def test_a_lone_image_is_always_continued_with_its_plain_caption(corpus):
    for document in corpus:
        assert document[0].role == IMAGE
        first = document[1]
        if first.role == TARGET:
            plain = {caption(a) for a in ALL_ATTRIBUTES if standin(a) == document[0].text}
            assert first.text.removesuffix("\n") in plain


def test_stand_ins_never_carry_loss_and_answers_do(corpus):
    for document in corpus:
        assert all(s.role == IMAGE for s in document if s.text.startswith("<|"))
        assert document[-1].role == TARGET
        if BINDING_QUERY in document_text(document):
            assert document[-2] == type(document[-2])(BINDING_QUERY, CONTEXT)


def test_mix_validation():
    with pytest.raises(ValueError, match="CorpusMix.binding"):
        CorpusMix(binding=-1)


def test_segment_tokenization_equals_prompt_tokenization(corpus, shapes_tokenizer):
    """Tokenizing segment by segment gives the tokens of the whole text (the prompt path)."""
    encoder = DocumentEncoder(shapes_tokenizer)
    for document in corpus[:300]:
        ids, loss = encoder.encode(document)
        whole = shapes_tokenizer(document_text(document))["input_ids"] + [shapes_tokenizer.eos_token_id]
        assert ids == whole
        assert len(loss) == len(ids) and loss[-1] and not loss[0]
