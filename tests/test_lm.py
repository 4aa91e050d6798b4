"""LM loading: devices without checkpoints, fingerprints, context windows, family traits."""

from __future__ import annotations

import pytest
import torch
from tiny import make_tiny_tokenizer

from frozen import FrozenModel


def test_lm_device_builds_from_config_alone(tiny_config):
    loaded = FrozenModel(tiny_config())
    meta = FrozenModel(tiny_config(lm_device="meta"))
    assert all(p.is_meta for p in meta.lm.parameters())
    random = FrozenModel(tiny_config(lm_device="cpu"))
    assert not any(p.is_meta for p in random.lm.parameters())
    first = next(iter(loaded.lm.state_dict()))
    assert not torch.equal(loaded.lm.state_dict()[first], random.lm.state_dict()[first])
    # same architecture and vocabulary: the same fingerprint, weights or not
    assert loaded.lm_fingerprint() == meta.lm_fingerprint() == random.lm_fingerprint()


def test_context_length_per_architecture(tiny_model, lm_dirs):
    assert tiny_model("gpt2").context_length == 256
    assert tiny_model("opt", lm=lm_dirs("opt", context=128)).context_length == 128


# ----- LM-family traits ----------------------------------------------------------------------

BLOCKS = {"llama": "LlamaDecoderLayer", "gpt2": "GPT2Block", "gpt_neox": "GPTNeoXLayer",
          "opt": "OPTDecoderLayer", "qwen2": "Qwen2DecoderLayer", "mistral": "MistralDecoderLayer",
          "gptj": "GPTJBlock"}


def _traits(folder):
    from transformers import AutoModelForCausalLM

    from frozen.lm import lm_traits, load_tokenizer

    return lm_traits(AutoModelForCausalLM.from_pretrained(folder), load_tokenizer(folder))


@pytest.mark.parametrize("arch", sorted(BLOCKS))
def test_traits_of_each_tiny_family(lm_dirs, arch):
    traits = _traits(lm_dirs(arch, context=128))
    assert traits.model_type == arch
    assert [t.__name__ for t in traits.block_types] == [BLOCKS[arch]]
    assert traits.context_length == 128
    # the tiny Llama and OPT tokenizers open every text with <s> (id 1); the others add nothing
    bos = arch in ("llama", "opt")
    assert traits.special_prefix == ((1,) if bos else ())
    assert traits.special_prefix_text == ("<s>" if bos else "")
    assert traits.accepts_positions and traits.embed_scale == 1.0
    assert traits.static_decoding and traits.cache_arg in ("cache", "past_key_values")
    assert not traits.chat_template


def test_frozen_model_reads_its_traits_once(tiny_model):
    model = tiny_model("llama", vision=None)
    assert model.context_length == model.lm_traits.context_length == 256
    assert model.processor.prefix_ids == (1,) and model.decoder.traits is model.lm_traits


def test_gemma_embedding_scale_is_found_and_the_prefix_norm_follows_it():
    """Gemma's embedding module multiplies rows by sqrt(D); the forward does not scale
    `inputs_embeds` again, so the splice is unchanged but the prefix norm target follows it."""
    from transformers import AutoModelForCausalLM, GemmaConfig

    from frozen.lm import embedding_rms, lm_traits

    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_config(GemmaConfig(
        vocab_size=320, hidden_size=64, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32))
    traits = lm_traits(lm, make_tiny_tokenizer())
    assert traits.embed_scale == pytest.approx(64 ** 0.5)
    ids = torch.arange(5, 50)
    with torch.no_grad():
        given = lm.get_input_embeddings()(ids).pow(2).mean(-1).sqrt().mean()
        table = lm.get_input_embeddings().weight[ids].pow(2).mean(-1).sqrt().mean()
    assert float(given / table) == pytest.approx(traits.embed_scale, rel=1e-4)
    assert embedding_rms(lm, traits.embed_scale) == pytest.approx(embedding_rms(lm) * 8.0)


def _tiny_mpt():
    from transformers import AutoModelForCausalLM, MptConfig

    return AutoModelForCausalLM.from_config(MptConfig(
        d_model=32, n_heads=4, n_layers=1, max_seq_len=64, vocab_size=320))


def test_an_override_entry_takes_effect(monkeypatch):
    """MPT names its window `max_seq_len`, which inspection does not read: LM_OVERRIDES does."""
    from frozen import lm as lm_module

    model, tokenizer = _tiny_mpt(), make_tiny_tokenizer()
    assert lm_module.lm_traits(model, tokenizer).context_length == 64
    assert not lm_module.lm_traits(model, tokenizer).accepts_positions      # ALiBi
    monkeypatch.delitem(lm_module.LM_OVERRIDES, "mpt")
    assert lm_module.lm_traits(model, tokenizer).context_length is None


def test_an_override_reaches_the_model(monkeypatch, tiny_model):
    """An entry for a family changes what FrozenModel does: here a shorter window."""
    from frozen import lm as lm_module
    from frozen.prompts import PromptError

    monkeypatch.setitem(lm_module.LM_OVERRIDES, "llama", {"context_length": lambda config: 16})
    model = tiny_model("llama", vision=None)
    assert model.context_length == 16 and model.decoder.traits.context_length == 16
    with pytest.raises(PromptError, match="context window of 16"):
        model.generate("the quick brown fox jumps over the lazy dog " * 3, max_new_tokens=2)
