"""The prefix-head interface: one registry, heads built from what they need, the LM's embedding
table read by a head but never held by it."""

from __future__ import annotations

import torch

from frozen.heads import PrefixHead, head_class, head_names


def test_registry_finds_every_head_by_its_name():
    assert {"linear", "mlp", "vocabulary"} <= set(head_names())
    for name in head_names():
        head = head_class(name)
        assert issubclass(head, PrefixHead) and head.name == name


def test_vocabulary_head_reads_the_lm_table_without_holding_it(tiny_model):
    model = tiny_model(prefix_head="vocabulary", prefix_head_options={"vocabulary": ["a", "b"]}).eval()
    head, table = model.prefix_head, model.lm.get_input_embeddings().weight
    assert sorted(head.state_dict()) == ["log_sharpness", "query.bias", "query.weight",
                                         "sharpness_scale"]
    assert all(p is not table for p in head.parameters())
    assert all(b is not table for b in head.buffers())
    assert not any(m is model.lm.get_input_embeddings() for m in head.modules())
    assert head.embeddings.weight is table               # read where the LM keeps it
    # The head follows the table when it changes (no copy taken at build; cosines are
    # scale-free, so the mixtures double).
    before = model.encode_images(torch.zeros(1, 3, 32, 32)).detach()
    with torch.no_grad():
        table.mul_(2)
    assert torch.allclose(model.encode_images(torch.zeros(1, 3, 32, 32)), before * 2, atol=1e-5)


def test_heads_that_are_not_told_anything_have_no_options(tiny_model):
    assert head_class("linear").option_defaults == {} and head_class("mlp").option_defaults == {}
    assert tiny_model(prefix_head="linear").config.prefix_head_options == {}


def test_vocabulary_head_mixes_tokens_at_the_scale_the_lm_reads_them():
    """An LM whose embedding module scales rows (Gemma: sqrt(D)) reads a token as the scaled row;
    a confident soft token must equal that, not the raw table row."""
    from transformers import AutoModelForCausalLM, GemmaConfig

    from frozen.heads import LMEmbeddings
    from frozen.heads.vocabulary import VocabularyPrefixHead
    from frozen.lm import lm_traits
    from frozen.testing import make_tiny_tokenizer

    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_config(GemmaConfig(
        vocab_size=320, hidden_size=64, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32))
    scale = lm_traits(lm, make_tiny_tokenizer()).embed_scale
    assert scale != 1
    head = VocabularyPrefixHead(4, 64, 1, LMEmbeddings(lm, scale), torch.tensor([7, 9]))
    with torch.no_grad():
        head.query.weight.zero_()
        head.query.bias.copy_(lm.get_input_embeddings().weight[7])       # points at token 7
        head.sharpness_scale.fill_(1e4)                                  # (nearly) one-hot
        read = lm.get_input_embeddings()(torch.tensor([7]))              # (1, D) as the LM reads it
        assert torch.allclose(head(torch.zeros(1, 4))[0], read.float(), atol=1e-4)
