"""The processor: one object for tokenizer, prefix slots, special prefix, window and image
transform, the same for training collation and inference."""

from __future__ import annotations

import io
import multiprocessing
import pickle

import pytest
import torch
from PIL import Image

from frozen.processor import Collator, Processor
from frozen.prompts import PromptError, Target, parse_prompt


def _picture(color=(200, 30, 30), size=(40, 24)) -> Image.Image:
    return Image.new("RGB", size, color)


def test_the_model_builds_its_processor_from_its_parts(tiny_model):
    model = tiny_model("llama")
    processor = model.processor
    assert processor.tokenizer is model.tokenizer
    assert processor.num_prefix_tokens == model.config.num_prefix_tokens == 2
    assert processor.prefix_ids == model.lm_traits.special_prefix == (1,)
    assert processor.context_length == model.context_length == 256
    assert processor.image_transform is model.image_transform
    assert model.collator().processor is processor


def test_training_and_inference_tokenize_alike(tiny_model):
    """A prompt gives the same ids, slots and pixels through the training collate and through
    the inference path; only training appends EOS after a final target."""
    model = tiny_model("llama")
    picture = _picture()
    prompt = ["a photo of", picture, Target(" a red square")]
    batch = model.collate([prompt], eos_after_target=False)
    rows, texts = model.processor.prompt_rows([prompt], None, "error", 4)
    inference = model._batch(rows)
    assert texts == ["a photo of<image> a red square"]
    assert rows[0].ids[:1] == [1] and sum(rows[0].is_image) == 2
    assert torch.equal(batch.input_ids, inference.input_ids)
    assert torch.equal(batch.image_mask, inference.image_mask)
    assert torch.equal(batch.pixel_values, inference.pixel_values)
    trained = model.collate([prompt])
    assert trained.input_ids[0, -1] == model.tokenizer.eos_token_id
    assert trained.input_ids.shape[1] == batch.input_ids.shape[1] + 1


def _collate_in_a_spawned_worker(collator: Collator, samples):
    return collator(samples)


def test_processor_and_collator_cross_a_spawn_boundary(tiny_model):
    """Data-loader workers start from a forkserver or spawn: the collate must pickle, and
    give the same batch on the other side."""
    model = tiny_model("llama")
    collator = model.collator()
    samples = [[_picture(), Target("a red square")], ["context ", _picture((9, 9, 200)), Target("b")]]
    expected = collator(samples)
    copy = pickle.loads(pickle.dumps(collator))
    assert copy.processor.prefix_ids == (1,) and copy.max_length == 256
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got = pool.apply(_collate_in_a_spawned_worker, (collator, samples))
    for name in ("input_ids", "attention_mask", "labels", "image_mask", "pixel_values"):
        assert torch.equal(getattr(got, name), getattr(expected, name)), name


def test_window_policy(tiny_model, lm_dirs):
    model = tiny_model("llama", lm=lm_dirs("llama", context=32), vision=None)
    processor = model.processor
    long = "the quick brown fox jumps over the lazy dog " * 4
    with pytest.raises(PromptError, match="context window of 32"):
        processor.prompt_rows([long], None, "error", 4)
    (row,), _ = processor.prompt_rows([long], None, "left", 4)
    assert len(row.ids) == 28 and row.ids[0] == 1              # room for 4 new tokens, BOS kept
    short = processor.tokenize(parse_prompt("hi"))
    assert processor.decode_groups([short, row], 4) == [([0, 1], 4)]
    assert processor.decode_groups([short, row], 8) == [([0], 8), ([1], 4)]
    # training keeps the start of a sequence instead
    batch = processor.collator()([[Target(long)]])
    assert batch.input_ids.shape[1] == 32 and batch.input_ids[0, 0] == 1


def test_a_text_only_processor_refuses_images():
    from frozen.testing import make_tiny_tokenizer

    processor = Processor(make_tiny_tokenizer(), 2, (1,), 64, None)
    with pytest.raises(PromptError, match="no vision encoder"):
        processor.image(_picture())
    with pytest.raises(PromptError, match="no vision encoder"):
        processor.collator()([[_picture(), Target("x")]])


def test_each_training_image_is_opened_and_converted_once(monkeypatch):
    """Shard bytes -> RGB picture -> (3, S, S): one PIL open, one load_image per sample."""
    import frozen.data.decode as decode
    import frozen.images as images
    from frozen.images import ImageTransform

    opened, loaded = [], []
    real_open, real_load = Image.open, images.load_image

    def counting_open(*args, **kwargs):
        opened.append(1)
        return real_open(*args, **kwargs)

    def counting_load(*args, **kwargs):
        loaded.append(1)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    monkeypatch.setattr(images, "load_image", counting_load)
    monkeypatch.setattr(decode, "load_image", counting_load)
    data = io.BytesIO()
    _picture(size=(64, 40)).save(data, format="JPEG")
    pixels = decode.decode_pair({"jpg": data.getvalue(), "txt": b"a red square"},
                                ImageTransform(32)).image
    assert pixels.shape == (3, 32, 32) and pixels.dtype == torch.uint8
    assert len(opened) == 1 and len(loaded) == 1
