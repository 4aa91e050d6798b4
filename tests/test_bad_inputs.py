"""Bad input to the model gets a clear message naming the problem."""

from __future__ import annotations

import pytest
from PIL import Image

from frozen import FrozenConfig, FrozenModel, PromptError, SamplingOptions


@pytest.fixture(scope="module")
def model(request):
    tiny_config = request.getfixturevalue("tiny_config")
    return FrozenModel(tiny_config())


def test_more_placeholders_than_images(model):
    img = Image.new("RGB", (8, 8))
    with pytest.raises(PromptError, match="2 <image> placeholder.*1 image"):
        model.generate("<image> and <image>", images=[img])
    with pytest.raises(PromptError, match="1 <image> placeholder.*2 image"):
        model.generate("<image> only", images=[img, img])
    with pytest.raises(PromptError, match="0 <image> placeholder.*1 image"):
        model.generate("no placeholder", images=[img])


def test_empty_prompt(model):
    with pytest.raises(PromptError, match="empty prompt"):
        model.generate("")
    with pytest.raises(PromptError, match="empty prompt"):
        model.generate([[]])
    with pytest.raises(PromptError, match="no prompts"):
        model.generate([])


def test_wrong_item_type(model):
    with pytest.raises(PromptError, match="prompt item 1 is a int"):
        model.generate([["text", 3]])


def test_unreadable_image_path(model, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot read image"):
        model.generate("<image>", images=[str(bad)])


def test_prompt_longer_than_context(tiny_config, lm_dirs):
    model = FrozenModel(tiny_config(lm=lm_dirs("llama", context=32)))
    long_prompt = "the quick brown fox " * 20
    with pytest.raises(PromptError, match="longer than the LM's context window of 32"):
        model.generate(long_prompt)
    out = model.generate(long_prompt, truncation="left", max_new_tokens=50)
    assert isinstance(out, str)              # kept the end, and stopped at the window


def test_left_truncation_never_splits_an_image(tiny_config, lm_dirs):
    model = FrozenModel(tiny_config(lm=lm_dirs("llama", context=32)))
    img = Image.new("RGB", (8, 8))
    prompt = [img, "the quick brown fox " * 3, img, "jumps"]
    rows, _ = model.processor.prompt_rows([prompt], None, "left", 8)
    batch = model._batch(rows)
    assert int(batch.image_mask.sum()) == 2 * batch.num_images
    assert batch.input_ids.shape[1] <= 32


def test_unknown_vision_name(lm_dirs):
    with pytest.raises(ValueError, match="unknown vision tower 'ViT-Nope'"):
        FrozenModel(FrozenConfig(lm=lm_dirs("llama"), vision="ViT-Nope"))


def test_unknown_vision_field(lm_dirs):
    with pytest.raises(ValueError, match="unknown open_clip vision field"):
        FrozenModel(FrozenConfig(lm=lm_dirs("llama"), vision={"layerz": 2}))


def test_missing_lm_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="LM folder not found"):
        FrozenModel(FrozenConfig(lm=str(tmp_path / "no-such-model"), vision=None))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        FrozenModel(FrozenConfig(lm=str(tmp_path / "empty"), vision=None))


@pytest.mark.parametrize("field,value,message", [
    ("num_prefix_tokens", 0, "num_prefix_tokens must be >= 1"),
    ("prefix_head", "conv", "prefix_head must be one of"),
    ("dtype", "fp8", "dtype must be one of"),
    ("lm", "", "lm must be a local model folder"),
    ("prefix_head_options", {"vocabulary": ["a", "b"]},
     r"prefix_head 'linear' has no option 'vocabulary'; its options: none"),
    ("prefix_head_options", {"anneal": 10.0}, r"prefix_head 'linear' has no option 'anneal'"),
    ("prefix_head_options", ["anneal"], "prefix_head_options must be a dict"),
])
def test_config_validation_names_the_field(field, value, message):
    fields = dict(lm="some/model")
    fields[field] = value
    with pytest.raises(ValueError, match=message):
        FrozenConfig(**fields)


def test_bad_sampling_options(model):
    with pytest.raises(ValueError, match="top_p"):
        model.generate("hi", temperature=1.0, top_p=1.5)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate("hi", max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        model.generate("hi", temperature=-1)


@pytest.mark.parametrize("field,value,message", [
    ("max_new_tokens", "5", "max_new_tokens must be an integer >= 1, got '5'"),
    ("min_new_tokens", -1, "min_new_tokens must be an integer >= 0"),
    ("temperature", "hot", "temperature must be a number >= 0"),
    ("top_p", 0, r"top_p must be in \(0, 1\]"),
    ("top_k", 2.5, "top_k must be an integer >= 0"),
    ("num_beams", 0, "num_beams must be an integer >= 1"),
    ("num_return_sequences", 0, "num_return_sequences must be an integer >= 1"),
    ("stop", ["", "x"], "stop must be a string or a list of non-empty strings"),
    ("stop", [1], "stop must be a string or a list of non-empty strings"),
    ("seed", 1.5, "seed must be an integer, got 1.5"),
    ("do_sample", "yes", "do_sample must be true, false or None"),
    ("static_cache", None, "static_cache must be true or false"),
    ("compile", 1, "compile must be true, false or None"),
])
def test_sampling_options_validation_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=rf"SamplingOptions\.{message}"):
        SamplingOptions(**{field: value})
    with pytest.raises(ValueError, match=rf"SamplingOptions\.{message}"):
        SamplingOptions().replace(**{field: value})


def test_sampling_options_from_a_mapping():
    options = SamplingOptions.from_dict({"max_new_tokens": 5, "stop": "\n", "temperature": 0.5})
    assert options == SamplingOptions(max_new_tokens=5, stop=["\n"], temperature=0.5)
    assert options.stop == ("\n",) and options.sampling
    with pytest.raises(ValueError, match=r"unknown sampling option\(s\): 'top-p' \(did you mean "
                                         r"'top_p'\?\); expected one of max_new_tokens, "):
        SamplingOptions.from_dict({"top-p": 0.9})


def test_a_long_prompt_does_not_shorten_the_others(tiny_config, lm_dirs):
    model = FrozenModel(tiny_config(lm=lm_dirs("llama", context=32)))
    short, long = "hello", "the quick brown fox jumps over"     # the long one nearly fills 32
    assert len(model.tokenizer(long)["input_ids"]) > 32 - 10
    together = model.generate([short, long], max_new_tokens=10, min_new_tokens=10)
    assert together[0] == model.generate(short, max_new_tokens=10, min_new_tokens=10)
    assert together[1] == model.generate(long, max_new_tokens=10, min_new_tokens=10)


def test_prefix_vocabulary_must_be_known_tokens(tiny_model):
    vocabulary = lambda tokens, n=2: FrozenConfig(          # noqa: E731
        lm="some/model", prefix_head="vocabulary", num_prefix_tokens=n,
        prefix_head_options={"vocabulary": tokens})
    with pytest.raises(ValueError, match=r"\['vocabulary'\] must be a list of at least 2"):
        vocabulary("abc")
    with pytest.raises(ValueError, match=r"\['vocabulary'\]\[1\] must be a list of at least 2"):
        vocabulary([["a", "b"], ["c"]])
    with pytest.raises(ValueError, match=r"3 per-slot lists but num_prefix_tokens is 2"):
        vocabulary([["a", "b"], ["c", "d"], ["e", "f"]])
    with pytest.raises(ValueError, match=r"not in the LM's vocabulary: \['<\|no-such-token\|>'\]"):
        tiny_model(prefix_head="vocabulary",
                   prefix_head_options={"vocabulary": ["a", "<|no-such-token|>"]})


def test_head_options_are_checked_by_their_head():
    with pytest.raises(ValueError, match=r"prefix_head_options\['anneal'\] must be >= 1"):
        FrozenConfig(lm="some/model", prefix_head="vocabulary", prefix_head_options={"anneal": 0.5})
    with pytest.raises(ValueError, match=r"prefix_head 'vocabulary' has no option 'aneal' \(did "
                                         r"you mean 'anneal'\?\); its options: \['anneal', "
                                         r"'hard', 'hard_from', 'vocabulary'\]"):
        FrozenConfig(lm="some/model", prefix_head="vocabulary", prefix_head_options={"aneal": 9})
    with pytest.raises(ValueError, match=r"prefix_head_options\['hard_from'\] must be in \[0, 1\]"):
        FrozenConfig(lm="some/model", prefix_head="vocabulary", prefix_head_options={"hard_from": 1.5})
    with pytest.raises(ValueError, match=r"prefix_head_options\['hard'\] must be true or false"):
        FrozenConfig(lm="some/model", prefix_head="vocabulary", prefix_head_options={"hard": "yes"})
    with pytest.raises(ValueError, match=r"prefix_head must be one of .*'vocabulary'.*"
                                         r"\(did you mean 'vocabulary'\?\)"):
        FrozenConfig(lm="some/model", prefix_head="vocabulery")


@pytest.mark.parametrize("bad, type_name", [
    (__import__("numpy").zeros((8, 8, 3), dtype="uint8"), "numpy.ndarray of shape (8, 8, 3)"),
    (5, "int"), (None, "NoneType"), (b"\x89PNG", "bytes"), ({"image": 1}, "dict")])
def test_images_entry_that_is_not_an_image(model, bad, type_name):
    img = Image.new("RGB", (8, 8))
    with pytest.raises(PromptError, match=rf"images\[1\] is a {__import__('re').escape(type_name)};"):
        model.generate("<image> and <image>", images=[img, bad])
    with pytest.raises(PromptError, match=r"images\[1\] is a"):
        list(model.stream("<image> and <image>", images=[img, bad]))


def test_prompt_item_tensor_of_the_wrong_rank(model):
    import torch

    with pytest.raises(PromptError, match=r"prompt item 0 is a torch.Tensor of shape \(8, 8\)"):
        model.generate([[torch.zeros(8, 8), "text"]])


def test_text_file_given_as_an_image_is_named(model, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("just some text\n")
    with pytest.raises(ValueError, match=f"cannot read image file '{notes}': not a supported"):
        model.generate("<image>", images=[str(notes)])
