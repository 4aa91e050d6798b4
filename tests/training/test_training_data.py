"""The data pipeline without a model: bad samples, splitting among ranks and workers,
seeding, packing, rate-limited logging."""

from __future__ import annotations

import logging
import random
from collections import Counter

import pytest
import torch

import caption_shards as shards
from frozen.data import SKIP_KINDS, CaptionStream, DataError, Packer, SkipCounter, expand_shards
from frozen.data.shards import partition, read_samples
from frozen.data.stream import worker_share
from frozen.images import ImageTransform
from frozen.prompts import Target

TRANSFORM = ImageTransform(32)


def rows(prompts):
    return prompts            # a collate that keeps the prompts as they are


def stream(spec: str, batches: int, batch_size: int = 2, **kw) -> CaptionStream:
    kw.setdefault("resampled", False)
    kw.setdefault("shuffle_buffer", 0)
    return CaptionStream(expand_shards(spec), TRANSFORM, rows, batch_size, batches, **kw)


def tally_of(batches) -> dict[str, int]:
    total = sum(b.tally for b in batches)
    return {"good": int(total[0]), **{k: int(v) for k, v in zip(SKIP_KINDS, total[1:]) if v}}


def test_each_bad_kind_is_skipped_and_counted(bad_shards):
    spec, expected = bad_shards
    batches = list(stream(spec, batches=23))       # 46 of the 47 good pairs: one pass
    assert len(batches) == 23
    counts = tally_of(batches)
    assert counts.pop("good") == 46
    assert counts == {k: v for k, v in expected.items() if k != "good"}
    keys = [k for b in batches for k in b.keys]
    assert len(keys) == len(set(keys)) == 46
    assert not any(k.startswith("b") for k in keys)          # no bad sample got through
    for batch in batches:
        for prompt in batch.prompts:
            image, caption = prompt
            assert image.shape == (3, 32, 32) and isinstance(caption, Target)


def test_truncated_tar_keeps_its_complete_samples_only(tmp_path):
    rng = random.Random(0)
    path = shards.write_tar(tmp_path / "t.tar", [shards.good_sample(f"k{i}", rng) for i in range(6)])
    shards.truncate_inside_sample(path, 4)
    counter = SkipCounter()
    got = [s["__key__"] for s in read_samples(str(path), counter)]
    assert got == ["k0", "k1", "k2", "k3"]
    assert counter.total == {"truncated_tar": 1}


def test_pipe_urls(good_shards):
    first = expand_shards(good_shards)[0]
    counter = SkipCounter()
    assert len(list(read_samples(f"pipe:cat {first}", counter))) == 24


@pytest.mark.parametrize("shards_, slots", [(2, 6), (3, 4), (5, 2), (4, 4)])
def test_exact_split_covers_every_sample_once(tmp_path, shards_, slots):
    spec = shards.write_good_shards(tmp_path, shards_, 6)
    urls = expand_shards(spec)
    seen = Counter()
    for slot in range(slots):
        parts = partition(urls, slot, slots)
        assert parts, f"slot {slot} has no data"
        for url, subset in parts:
            seen.update(s["__key__"] for s in read_samples(url, SkipCounter(), subset))
    assert len(seen) == shards_ * 6 and set(seen.values()) == {1}


def test_every_rank_and_worker_yields_its_share_however_few_shards(tmp_path):
    spec = shards.write_good_shards(tmp_path, 1, 10)
    for total, workers in [(7, 3), (2, 4), (5, 1)]:
        assert sum(worker_share(total, w, workers) for w in range(workers)) == total
    # 1 shard, 2 ranks: both ranks still give exactly `batches` batches, with disjoint samples.
    keys = []
    for rank in range(2):
        got = list(stream(spec, batches=4, rank=rank, world_size=2))
        assert len(got) == 4
        keys.append({k for b in got for k in b.keys})
    assert not keys[0] & keys[1]


def test_resampled_streams_are_seeded_per_rank_and_reproducible(good_shards):
    def keys(rank, seed=0):
        return [k for b in stream(good_shards, 3, resampled=True, shuffle_buffer=8, rank=rank,
                                  world_size=2, seed=seed) for k in b.keys]

    assert keys(0) == keys(0)
    assert keys(0) != keys(1)
    assert keys(0) != keys(0, seed=1)


def test_packing_puts_several_captions_in_one_sequence(good_shards):
    batch = next(iter(stream(good_shards, 1, batch_size=2, packer=Packer(3))))
    assert len(batch.keys) == 6
    prompt = batch.prompts[0]
    assert [type(x) for x in prompt] == [torch.Tensor, Target] * 3
    assert prompt[1].endswith("\n") and prompt[3].endswith("\n") and not prompt[5].endswith("\n")


def test_packing_respects_the_token_budget(tiny_lm):
    from frozen.data.decode import Pair
    from frozen.lm import load_tokenizer

    tok = load_tokenizer(tiny_lm)
    pairs = [Pair(torch.zeros(3, 2, 2), "a red picture", str(i)) for i in range(10)]
    packer = Packer(8, max_tokens=30, tokenizer=tok, num_prefix_tokens=2)
    cost = packer.cost(pairs[0])
    groups = list(packer(pairs))
    assert sum(len(g) for g in groups) == 10
    assert all(2 + cost * len(g) <= 30 for g in groups)
    assert len(groups[0]) == (30 - 2) // cost


def test_skips_are_logged_at_a_limited_rate(caplog):
    counter = SkipCounter(log_interval=3600)
    with caplog.at_level(logging.WARNING, logger="frozen.data"):
        for _ in range(50):
            counter.skip("corrupt_image", "x", "bad")
        counter.skip("empty_caption", "y", "bad")
    assert len(caplog.records) == 2                # the first of each kind, then quiet
    assert counter.take()[1:].sum() == 51


def test_all_bad_data_stops_with_a_clear_error(tmp_path):
    bad = shards.bad_samples("z")["corrupt_image"]
    shards.write_tar(tmp_path / "00000.tar", [dict(bad, __key__=f"z{i}") for i in range(20)])
    with pytest.raises(DataError, match="no usable image-caption pair"):
        list(stream(str(tmp_path / "00000.tar"), 1, stall_limit=50))


def test_missing_shards_only_stop_with_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no usable"):
        list(stream(str(tmp_path / "nope-{0..3}.tar"), 1, stall_limit=20, resampled=True))
