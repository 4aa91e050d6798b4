"""The static-cache decode path (frozen.decoding): token parity with transformers' generate,
per-row EOS, min_new_tokens, stop strings, seeded sampling, compiled steps cached per shape."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from tiny import ARCHS

from frozen import SamplingOptions
from frozen.decoding import CHECK_EVERY, MIN_CACHE_LENGTH, DecodeRequest, Sampler, cache_length

TEXT = ["Q: What is the capital of France? A:", "def fib(n):", "the quick brown"]


def image_prompts():
    red, blue = Image.new("RGB", (32, 32), (220, 30, 30)), Image.new("RGB", (32, 32), (20, 40, 230))
    return TEXT + [[red, "A photo of"], [blue, "x y", red, "the quick brown fox jumps"]]


def spliced(model, prompts, new_tokens):
    """Left-padded spliced embeddings (B, T, D) and mask (B, T), as generate builds them."""
    rows, _ = model.processor.prompt_rows(prompts, None, "error", new_tokens)
    batch = model._batch(rows)
    return model.embed(batch), batch.attention_mask


def reference_ids(model, embeds, mask, new_tokens, **kwargs):
    """transformers' own greedy generate over the same embeddings: new ids (B, T')."""
    tok = model.tokenizer
    return model.lm.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=new_tokens,
                             do_sample=False, temperature=None, top_p=None, top_k=None,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, **kwargs)


def fast_ids(model, embeds, mask, new_tokens, check_every=CHECK_EVERY, **options):
    tok = model.tokenizer
    request = DecodeRequest(embeds, mask, SamplingOptions(max_new_tokens=new_tokens, **options),
                            eos_ids=[tok.eos_token_id], pad_id=tok.pad_token_id,
                            check_every=check_every)
    return torch.cat(list(model.decoder.decode(request)), 1)


def assert_same_tokens(ours, expected, pad_id):
    """Equal where transformers generated; ours may run on a few steps as padding (it looks at
    the rows only every few tokens)."""
    assert torch.equal(ours[:, :expected.shape[1]], expected)
    assert (ours[:, expected.shape[1]:] == pad_id).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_tokens_equal_transformers_generate(tiny_model, arch):
    model = tiny_model(arch).eval()
    with torch.no_grad():
        embeds, mask = spliced(model, image_prompts(), 14)
        assert (mask[:, 0] == 0).any(), "the batch should be left padded"
        expected = reference_ids(model, embeds, mask, 14)
        ours = fast_ids(model, embeds, mask, 14)
    assert len({tuple(r) for r in expected.tolist()}) > 1, "tiny model too degenerate"
    assert_same_tokens(ours, expected, model.tokenizer.pad_token_id)
    prompts = image_prompts()
    assert (model.generate(prompts, max_new_tokens=10, static_cache=True)
            == model.generate(prompts, max_new_tokens=10))


def eos_after_first_step(model, rows: list[int]):
    """A hook making EOS the only choice for `rows` from the second new token on."""
    eos = model.tokenizer.eos_token_id

    def hook(module, inputs, out):
        if out.shape[1] == 1:                    # a one-token decode step
            out = out.clone()
            out[rows, :, eos] = 1e4
        return out

    return model.lm.get_output_embeddings().register_forward_hook(hook)


def test_each_row_stops_at_its_own_eos_and_min_new_tokens(tiny_model):
    model = tiny_model().eval()
    pad = model.tokenizer.pad_token_id
    with torch.no_grad():
        embeds, mask = spliced(model, TEXT, 12)
        handle = eos_after_first_step(model, [1])
        try:
            expected = reference_ids(model, embeds, mask, 12)
            ours = fast_ids(model, embeds, mask, 12)
            assert (ours[1, 2:] == pad).all() and (ours[0] != pad).all()
            assert_same_tokens(ours, expected, pad)
            expected = reference_ids(model, embeds, mask, 12, min_new_tokens=5)
            ours = fast_ids(model, embeds, mask, 12, min_new_tokens=5)
            assert (ours[1, :5] != pad).all() and (ours[1, 6:] == pad).all()
            assert_same_tokens(ours, expected, pad)
        finally:
            handle.remove()


def test_loop_ends_early_when_every_row_is_done(tiny_model):
    model = tiny_model().eval()
    with torch.no_grad():
        embeds, mask = spliced(model, TEXT, 40)
        handle = eos_after_first_step(model, [0, 1, 2])
        try:
            ours = fast_ids(model, embeds, mask, 40, check_every=4)
        finally:
            handle.remove()
    assert ours.shape == (3, 4)          # the first host check saw every row done


def test_stop_strings_and_stream_match_the_default_loop(tiny_model):
    model = tiny_model()
    full = model.generate(TEXT[0], max_new_tokens=16)
    stop = [full[5:7], "zzz"]
    assert (model.generate(TEXT, max_new_tokens=16, stop=stop, static_cache=True)
            == model.generate(TEXT, max_new_tokens=16, stop=stop))
    assert "".join(model.stream(TEXT[0], max_new_tokens=16, static_cache=True)) == full
    assert ("".join(model.stream(TEXT[0], max_new_tokens=16, stop=stop, static_cache=True))
            == model.generate(TEXT[0], max_new_tokens=16, stop=stop))


def test_seeded_sampling_repeats_and_leaves_the_global_rng_alone(tiny_model):
    model = tiny_model()
    kwargs = dict(max_new_tokens=10, temperature=1.3, top_k=40, top_p=0.95, static_cache=True)
    torch.manual_seed(7)
    expected_global = torch.rand(3)
    torch.manual_seed(7)
    first = model.generate(TEXT, seed=5, **kwargs)
    assert torch.equal(torch.rand(3), expected_global)      # global RNG untouched
    torch.manual_seed(1234)                                  # a different global state
    assert model.generate(TEXT, seed=5, **kwargs) == first
    assert len({tuple(model.generate(TEXT, seed=s, **kwargs)) for s in range(4)}) > 1
    greedy = model.generate(TEXT, max_new_tokens=10)
    assert model.generate(TEXT, seed=0, **dict(kwargs, top_k=1)) == greedy


def test_sampler_follows_the_distribution():
    logits = torch.tensor([[0.0, 1.0, 2.0, -30.0]]).log_softmax(-1).repeat(4000, 1)
    generator = torch.Generator().manual_seed(0)
    noise = -torch.log1p(-torch.rand(logits.shape, generator=generator))
    picks = Sampler(temperature=1.0)(logits, noise)
    freq = torch.bincount(picks, minlength=4).float() / len(picks)
    assert torch.allclose(freq, logits[0].softmax(-1), atol=0.03)
    assert Sampler(temperature=1.0, top_k=1)(logits, noise).eq(2).all()
    top_p = Sampler(temperature=1.0, top_p=0.5)(logits, noise)        # only the 0.67 token
    assert top_p.eq(2).all()


def test_num_return_sequences_and_beams_with_static_cache(tiny_model):
    model = tiny_model()
    out = model.generate(TEXT[:2], max_new_tokens=5, temperature=1.0, seed=0,
                         num_return_sequences=3, static_cache=True)
    assert [len(group) for group in out] == [3, 3]
    beams = model.generate(TEXT[:2], max_new_tokens=5, num_beams=3, static_cache=True)
    assert beams == model.generate(TEXT[:2], max_new_tokens=5, num_beams=3)   # falls back


def test_cache_lengths_are_few_buckets():
    assert cache_length(5, None) == MIN_CACHE_LENGTH
    assert cache_length(65, None) == 128 and cache_length(128, None) == 128
    assert cache_length(300, 256) == 512          # a window too short for the request is ignored
    assert cache_length(200, 256) == 256 and cache_length(200, 220) == 220


def test_compiled_step_equals_eager_and_compiles_once_per_shape(tiny_model):
    """torch.compile with fullgraph=True (a graph break fails); the aot_eager backend traces the
    step as inductor does, without generating code, to keep the suite fast."""
    model = tiny_model().eval()
    model.decoder.backend = "aot_eager"
    prompts = image_prompts()
    expected = model.generate(prompts, max_new_tokens=10)
    assert model.generate(prompts, max_new_tokens=10, static_cache=True, compile=True) == expected
    assert len(model.decoder.compile_seconds) == 1
    other = ["a", "b c d e f g"] + TEXT[:2] + [prompts[3]]      # same (batch, cache length)
    assert (model.generate(other, max_new_tokens=10, static_cache=True, compile=True)
            == model.generate(other, max_new_tokens=10))
    assert len(model.decoder.compile_seconds) == 1 and len(model.decoder._steps) == 1


def test_a_failed_compile_falls_back_to_the_eager_step(tiny_model, caplog):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no compiler here")

    model = tiny_model().eval()
    model.decoder.backend = broken_backend
    expected = model.generate(TEXT, max_new_tokens=10)
    with caplog.at_level("WARNING", logger="frozen"):
        assert model.generate(TEXT, max_new_tokens=10, static_cache=True, compile=True) == expected
    assert "compiling the decode step failed" in caplog.text
    assert model.decoder.compile_seconds == {}


def test_shapes_past_the_recompile_limit_run_uncompiled(tiny_model, caplog):
    torch._dynamo.reset()                       # earlier tests' compiles count towards the limit
    model = tiny_model().eval()
    model.decoder.backend = "eager"
    # dynamo's own patch: monkeypatch's undo deletes the config entry, breaking later compiles
    with torch._dynamo.config.patch(recompile_limit=1), caplog.at_level("WARNING", logger="frozen"):
        for prompts in (TEXT[:2], TEXT):        # two batch sizes: two shapes
            assert (model.generate(prompts, max_new_tokens=9, static_cache=True, compile=True)
                    == model.generate(prompts, max_new_tokens=9))
    assert len(model.decoder.compile_seconds) == 1
    assert "compiling the decode step failed" in caplog.text
