"""Generation: text-only parity with the bare LM, call forms, and sampling options."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from frozen import SamplingOptions

PROMPTS = ["Q: What is the capital of France? A:", "def fib(n):", "the quick brown"]
PARITY_ARCHS = ["llama", "gpt2", "gpt_neox", "opt", "qwen2", "mistral", "gptj"]


def bare_greedy(model, prompts, max_new_tokens):
    """The bare LM's own generate on the same prompts, left padded."""
    tok = model.tokenizer
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True)
    out = model.lm.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                            pad_token_id=tok.pad_token_id)
    return tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)


@pytest.mark.parametrize("arch", PARITY_ARCHS)
def test_greedy_text_matches_bare_lm_batched_and_single(tiny_model, arch):
    model = tiny_model(arch)
    expected = bare_greedy(model, PROMPTS, 12)
    assert len(set(expected)) > 1, "tiny model too degenerate to tell prompts apart"
    assert model.generate(PROMPTS, max_new_tokens=12) == expected
    for prompt in PROMPTS:
        assert model.generate(prompt, max_new_tokens=12) == bare_greedy(model, [prompt], 12)[0]


def test_call_forms(tiny_model):
    model = tiny_model()
    img = Image.new("RGB", (40, 30), (200, 20, 20))
    one = model.generate("hello", max_new_tokens=4)
    assert isinstance(one, str)
    many = model.generate(["hello", "def fib(n):"], max_new_tokens=4, temperature=0.8,
                          top_p=0.9, top_k=50, seed=0)
    assert isinstance(many, list) and len(many) == 2 and all(isinstance(m, str) for m in many)
    mixed = model.generate([[img, "A photo of a dog.\n", img, "A photo of"], "plain text"],
                           max_new_tokens=4)
    assert isinstance(mixed, list) and len(mixed) == 2
    placeholder = model.generate("<image>A photo of", images=[img], max_new_tokens=4)
    assert placeholder == model.generate([[img, "A photo of"]], max_new_tokens=4)[0]
    full = model.generate("hello", max_new_tokens=4, return_full_text=True)
    assert full == "hello" + one


def test_image_changes_the_continuation(tiny_model):
    model = tiny_model()
    red, blue = Image.new("RGB", (32, 32), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))
    with torch.no_grad():
        for p in model.prefix_head.parameters():
            p.normal_(0, 1.0)
    batch = model.collate([[red, "a"], [blue, "a"]])
    embeds = model.embed(batch)
    slots = batch.image_mask[0]
    assert torch.equal(slots, batch.image_mask[1]) and int(slots.sum()) == 2
    assert not torch.allclose(embeds[0, slots], embeds[1, slots])   # image slots differ
    assert torch.equal(embeds[0, ~slots], embeds[1, ~slots])        # text slots identical


def test_batched_image_prompts_equal_one_at_a_time(tiny_model):
    model = tiny_model()
    imgs = [Image.new("RGB", (32, 32), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    prompts = [[imgs[0], "A photo of"], [imgs[1], "x y z", imgs[2], "A"], "text only prompt"]
    batched = model.generate(prompts, max_new_tokens=6)
    single = [model.generate([p], max_new_tokens=6)[0] for p in prompts]
    assert batched == single


def test_sampling_is_reproducible_with_seed(tiny_model):
    model = tiny_model()
    kwargs = dict(max_new_tokens=10, temperature=1.5, seed=123)
    first = model.generate(PROMPTS, **kwargs)
    assert model.generate(PROMPTS, **kwargs) == first
    others = {tuple(model.generate(PROMPTS, max_new_tokens=10, temperature=1.5, seed=s))
              for s in range(5)}
    assert len(others) > 1


def test_top_k_one_is_greedy(tiny_model):
    model = tiny_model()
    greedy = model.generate(PROMPTS, max_new_tokens=8)
    assert model.generate(PROMPTS, max_new_tokens=8, temperature=1.0, top_k=1, seed=0) == greedy


def test_num_return_sequences(tiny_model):
    model = tiny_model()
    out = model.generate(["hello", "def"], max_new_tokens=5, temperature=1.0, seed=0,
                         num_return_sequences=3)
    assert len(out) == 2 and all(len(group) == 3 for group in out)
    with pytest.raises(ValueError, match="num_return_sequences"):
        model.generate("hello", num_return_sequences=2)


def test_stop_strings_cut_the_text(tiny_model):
    model = tiny_model()
    full = model.generate(PROMPTS[0], max_new_tokens=16)
    stop = full[3:5]
    cut = model.generate(PROMPTS[0], max_new_tokens=16, stop=[stop])
    assert stop not in cut and full.startswith(cut) and len(cut) <= full.index(stop)


def test_eos_stops_each_row(tiny_model):
    model = tiny_model()
    eos = model.tokenizer.eos_token_id
    with torch.no_grad():        # make EOS the most likely token after "def"
        bias = torch.zeros(model.lm.config.vocab_size)
        bias[eos] = 1e4
        model.lm.get_output_embeddings().weight[eos] += 0  # keep weights; bias via a hook
    handle = model.lm.get_output_embeddings().register_forward_hook(
        lambda mod, inp, out: out + bias)
    try:
        out = model.generate(["hello", "def"], max_new_tokens=8)
    finally:
        handle.remove()
    assert out == ["", ""]


def test_stream_matches_generate(tiny_model):
    model = tiny_model()
    pieces = list(model.stream(PROMPTS[0], max_new_tokens=12))
    assert len(pieces) >= 1
    assert "".join(pieces) == model.generate(PROMPTS[0], max_new_tokens=12)
    full = model.generate(PROMPTS[0], max_new_tokens=12)
    stop = full[4:6]
    assert "".join(model.stream(PROMPTS[0], max_new_tokens=12, stop=[stop])) == \
        model.generate(PROMPTS[0], max_new_tokens=12, stop=[stop])


def test_options_object_and_keyword_overrides(tiny_model):
    model = tiny_model()
    options = SamplingOptions(max_new_tokens=6, temperature=1.2, seed=4)
    sampled = model.generate(PROMPTS, options)
    assert sampled == model.generate(PROMPTS, max_new_tokens=6, temperature=1.2, seed=4)
    greedy = model.generate(PROMPTS, max_new_tokens=6)
    assert sampled != greedy
    assert model.generate(PROMPTS, options, temperature=0) == greedy         # one-off override
    assert "".join(model.stream(PROMPTS[0], options, temperature=0)) == greedy[0]
    assert options == SamplingOptions(max_new_tokens=6, temperature=1.2, seed=4)  # untouched
    # do_sample=True with temperature 0 samples at temperature 1
    assert (model.generate(PROMPTS, options, do_sample=True, temperature=0)
            == model.generate(PROMPTS, options, temperature=1.0))


def test_unknown_or_misplaced_options_are_named(tiny_model):
    model = tiny_model()
    with pytest.raises(ValueError, match=r"unknown sampling option\(s\): 'max_new_token' "
                                         r"\(did you mean 'max_new_tokens'\?\)"):
        model.generate("hi", max_new_token=5)
    with pytest.raises(ValueError, match=r"unknown sampling option\(s\): 'temprature'"):
        list(model.stream("hi", temprature=0.5))
    with pytest.raises(TypeError, match=r"options must be a frozen.SamplingOptions, got int "
                                        r"\(pass sampling settings by name"):
        model.generate("hi", 5)


def test_generation_keeps_training_mode_and_rng(tiny_model):
    model = tiny_model()
    model.train()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    model.generate("hi", max_new_tokens=3, temperature=1.0, seed=1)
    assert torch.equal(torch.rand(3), expected)
    assert model.training and model.vision.training and not model.lm.training


def test_beam_search_over_image_prompts(tiny_model):
    model = tiny_model()
    img = Image.new("RGB", (32, 32), (0, 200, 0))
    prompts = [[img, "A photo of"], "the quick"]
    beams = model.generate(prompts, max_new_tokens=5, num_beams=3)
    assert len(beams) == 2 and all(isinstance(b, str) for b in beams)
    two = model.generate(prompts, max_new_tokens=5, num_beams=3, num_return_sequences=2)
    assert [len(g) for g in two] == [2, 2]


def test_model_without_input_embeddings_is_refused():
    from torch import nn

    from frozen.lm import check_accepts_embeddings

    class IdsOnly(nn.Module):
        def forward(self, input_ids, attention_mask=None):
            return input_ids

    with pytest.raises(ValueError, match="IdsOnly cannot take input embeddings"):
        check_accepts_embeddings(IdsOnly())


def test_text_only_model_without_vision(tiny_model):
    model = tiny_model(vision=None)
    assert model.vision is None and model.num_trainable == 0
    assert isinstance(model.generate("hello", max_new_tokens=3), str)
    with pytest.raises(ValueError, match="no vision encoder"):
        model.generate([[Image.new("RGB", (8, 8)), "x"]])


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_static_cache_keeps_greedy_parity(tiny_model, arch):
    model = tiny_model(arch)
    expected = bare_greedy(model, PROMPTS, 10)
    assert model.generate(PROMPTS, max_new_tokens=10, static_cache=True) == expected
    img = Image.new("RGB", (32, 32), (200, 30, 30))
    prompt = [[img, "A photo of"], "the quick brown"]
    assert (model.generate(prompt, max_new_tokens=8, static_cache=True)
            == model.generate(prompt, max_new_tokens=8))


def test_an_image_shared_by_prompts_is_encoded_once(tiny_model):
    model = tiny_model().eval()
    demo, a, b = (Image.new("RGB", (32, 32), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    shared = [[demo, "red\n", a, "it is"], [demo, "red\n", b, "it is"], [a, "again"]]
    copies = [[demo.copy(), "red\n", a.copy(), "it is"], [demo.copy(), "red\n", b, "it is"],
              [a.copy(), "again"]]
    batch = model.collate(shared)
    assert batch.pixel_values.shape[0] == 3 and batch.num_images == 5
    assert batch.image_index.tolist() == [0, 1, 0, 2, 1]
    assert model.collate(copies).image_index is None
    assert torch.allclose(model.embed(batch), model.embed(model.collate(copies)), atol=1e-6)
    assert model.generate(shared, max_new_tokens=6) == model.generate(copies, max_new_tokens=6)
