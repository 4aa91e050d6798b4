"""The byte-level BPE tokenizer of the shapes-world language model.

Byte-level BPE (the GPT-2 scheme, no normalizer, no added prefix space) decodes back
to exactly the text it encoded, for any string. It is trained on the shapes world's
own text until every word of a caption or prompt is a single token. Special tokens:
``<s>`` (BOS, added in front by the tokenizer), ``</s>`` (EOS), ``<pad>``, ``<unk>``
and the 13 image stand-ins.

The fixed phrases of fast binding are single (ordinary, decodable) tokens:
``Q: what is this? A: this is a``, ``this is a`` and ``this is a {name}`` for each
nonce name. A demonstration ``<image>this is a dax.`` then puts the token that carries
the name right after the image's shape stand-in, and the question's phrase right after
the query's shape stand-in: binding needs only a previous-token head and one matching
head. With the phrases spelled word by word a small model stayed at chance for
thousands of steps. (Even with these phrases it formed that circuit for few seeds;
the corpus's copy and direct-binding documents make it form more often.) Added phrases
match anywhere in a text (``this is about`` becomes ``this is a`` + ``bout``); decoding
stays exact.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from frozen.toy.prompts import BINDING_QUERY, NONCE_WORDS
from frozen.toy.standins import STANDIN_TOKENS

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
SPECIAL_TOKENS = [BOS, EOS, PAD, UNK, *STANDIN_TOKENS]
PHRASE_TOKENS = [BINDING_QUERY, "this is a", *(f"this is a {name}" for name in NONCE_WORDS)]


def train_tokenizer(
    texts: Iterable[str], max_vocab_size: int = 1024, phrases: Iterable[str] = tuple(PHRASE_TOKENS)
) -> PreTrainedTokenizerFast:
    """Train byte-level BPE on ``texts``, merging until no pair is left or the cap is hit."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=max_vocab_size,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.add_tokens([AddedToken(phrase, normalized=False, special=False) for phrase in phrases])
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=list(STANDIN_TOKENS),
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
