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

DOCUMENT_KINDS = ("bad_document", "too_few_images", "too_many_images")     # documents only
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


# ----- every bad case counted exactly, under its one kind -----------------------------------

def test_salted_shards_count_exactly_per_kind(tmp_path):
    """3 shards x 40 salted with 30 bad samples of every kind (two variants of most), a shard
    cut inside a sample, a missing shard, then a good shard: every count exact."""
    expected = shards.write_salted_shards(tmp_path, shards=3, per_shard=40, bad_per_shard=10)
    rng = random.Random(5)
    cut = shards.write_tar(tmp_path / "00003.tar", [shards.good_sample(f"c{i:02d}", rng) for i in range(12)])
    shards.truncate_inside_sample(cut, 7)
    shards.write_tar(tmp_path / "00005.tar", [shards.good_sample("last", rng)])
    good = expected.pop("good") + 7 + 1            # 7 complete samples before the cut, then "last"
    batches = list(stream(str(tmp_path / "{00000..00005}.tar"), batches=good, batch_size=1))
    counts = tally_of(batches)
    assert counts.pop("good") == good
    assert sum(expected.values()) == 30 and set(expected) == set(SKIP_KINDS) - {
        "truncated_tar", "unreadable_shard", "missing_shard", *DOCUMENT_KINDS}
    assert counts == {**expected, "truncated_tar": 1, "missing_shard": 1}
    assert batches[-1].keys == ["last"]
    assert not any("b" in k[2:] for b in batches for k in b.keys)     # no bad sample got through


def test_every_cut_image_is_truncated_and_complete_bad_ones_corrupt():
    from frozen.data.decode import image_of
    from frozen.data.skips import SampleSkipped

    def kind(ext, data):
        try:
            image_of({ext: data}, TRANSFORM)
            return "good"
        except SampleSkipped as skip:
            return skip.kind

    pictures = {"jpg": shards.image_bytes((200, 30, 30), size=(24, 16)),
                "png": shards.image_bytes((30, 30, 200), size=(24, 16), fmt="PNG"),
                "webp": shards.image_bytes((30, 200, 30), size=(24, 16), fmt="WEBP")}
    for ext, data in pictures.items():
        assert kind(ext, data) == "good" and kind(ext, data + b"\0trailing bytes") == "good"
        cuts = Counter(kind(ext, data[:n]) for n in range(len(data)))    # header cuts included
        assert cuts == {"truncated_image": len(data)}, (ext, cuts)
    assert kind("jpg", shards.unsupported_jpeg()) == "corrupt_image"
    assert kind("jpg", b"\0garbage" * 30) == "corrupt_image"


def _read(path, subset=(0, 1)):
    counter = SkipCounter()
    keys = [s["__key__"] for s in read_samples(str(path), counter, subset)]
    return keys, dict(counter.total)


def _cut_points(path) -> list[int]:
    """Every 512-byte boundary, and points inside each header and each member's data."""
    import tarfile

    size = path.stat().st_size
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    inside = [m.offset + d for m in members for d in (1, 100, 148, 511)]         # headers
    inside += [m.offset_data + d for m in members for d in (1, m.size // 2, m.size - 1) if m.size > 1]
    return sorted(set(range(0, size + 1, 512)) | set(inside) | {size - 1})


def test_a_tar_cut_anywhere_counts_once_as_truncated_tar(tmp_path):
    rng = random.Random(3)
    path = shards.write_tar(tmp_path / "full.tar", [shards.good_sample(f"k{i}", rng) for i in range(5)])
    data = path.read_bytes()
    cut_path = tmp_path / "cut.tar"
    points = _cut_points(path)
    assert len(points) > 60
    for cut in points:
        cut_path.write_bytes(data[:cut])
        complete = shards.complete_samples_before(path, cut)
        whole = cut >= shards.sample_layout(path)[1] + 1024
        for subset in ((0, 1), (1, 2)):
            keys, counts = _read(cut_path, subset)
            assert keys == complete[subset[0]::subset[1]], (cut, subset)
            assert counts == ({} if whole else {"truncated_tar": 1}), (cut, subset)


def test_three_hundred_random_cuts_each_count_once(tmp_path):
    rng = random.Random(7)
    samples = [shards.good_sample(f"r{i:02d}", rng) for i in range(12)]
    path = shards.write_tar(tmp_path / "full.tar", samples)
    data = path.read_bytes()
    end = shards.sample_layout(path)[1]
    cut_path = tmp_path / "cut.tar"
    missed = 0
    for cut in (rng.randrange(end + 1024) for _ in range(300)):     # anywhere before the end marker ends
        cut_path.write_bytes(data[:cut])
        keys, counts = _read(cut_path)
        missed += counts != {"truncated_tar": 1} or keys != shards.complete_samples_before(path, cut)
    assert missed == 0


def test_compressed_shards_read_whole_and_cut(tmp_path):
    import gzip

    rng = random.Random(2)
    path = shards.write_tar(tmp_path / "a.tar", [shards.good_sample(f"z{i}", rng) for i in range(4)])
    packed = gzip.compress(path.read_bytes())
    (tmp_path / "a.tar.gz").write_bytes(packed)
    (tmp_path / "cut.tar.gz").write_bytes(packed[: len(packed) // 2])
    assert _read(tmp_path / "a.tar.gz") == (["z0", "z1", "z2", "z3"], {})
    keys, counts = _read(tmp_path / "cut.tar.gz")
    assert counts == {"truncated_tar": 1} and len(keys) < 4


def test_missing_and_unreadable_shards_have_their_own_kinds(tmp_path):
    assert _read(tmp_path / "nope.tar") == ([], {"missing_shard": 1})
    assert _read("pipe:exit 3") == ([], {"truncated_tar": 1})         # a pipe that gives nothing
    (tmp_path / "not-a-tar.tar").write_bytes(b"<html>404 not found</html>")
    assert _read(tmp_path / "not-a-tar.tar") == ([], {"truncated_tar": 1})


# ----- shard arguments ----------------------------------------------------------------------

def test_shard_folders_and_globs_expand_sorted(tmp_path):
    shards.write_good_shards(tmp_path / "d", 3, 2)
    (tmp_path / "d" / "notes.txt").write_text("not a shard")
    names = [f"{tmp_path}/d/{i:05d}.tar" for i in range(3)]
    assert expand_shards(str(tmp_path / "d")) == names
    assert expand_shards(f"{tmp_path}/d/*.tar") == names
    assert expand_shards(f"{tmp_path}/d/0000[12].tar") == names[1:]
    assert expand_shards([str(tmp_path / "d"), names[0]]) == names + names[:1]
    assert expand_shards("pipe:cat x.tar") == ["pipe:cat x.tar"]


def test_shard_arguments_that_find_nothing_say_so(tmp_path):
    from frozen.data.shards import check_shards

    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"shard folder .*empty' holds no shards"):
        expand_shards(str(tmp_path / "empty"))
    with pytest.raises(DataError, match=r"shards not found: no file matches .*\*\.tar"):
        expand_shards(f"{tmp_path}/empty/*.tar")
    with pytest.raises(DataError, match=r"train shards not found: '.*nope\.tar'"):
        check_shards(expand_shards(str(tmp_path / "nope.tar")), "train")
    with pytest.raises(DataError, match=r"val shards not found: none of the 3"):
        check_shards(expand_shards(str(tmp_path / "x{0..2}.tar")), "val")


# ----- tiny and uneven data -------------------------------------------------------------------

@pytest.mark.parametrize("sizes", [(1,), (2,), (3,), (1, 2, 3)])
@pytest.mark.parametrize("resampled", [False, True])
def test_tiny_shards_feed_every_rank_and_worker(tmp_path, sizes, resampled):
    """2 ranks x 2 workers on shards of 1-3 samples: every worker yields its batches."""
    rng = random.Random(0)
    for s, n in enumerate(sizes):
        shards.write_tar(tmp_path / f"{s:05d}.tar", [shards.good_sample(f"{s}-{i}", rng) for i in range(n)])
    spec = str(tmp_path)
    every = {f"{s}-{i}" for s, n in enumerate(sizes) for i in range(n)}
    for rank in range(2):
        for worker in range(2):
            data = stream(spec, batches=6, batch_size=3, rank=rank, world_size=2, resampled=resampled,
                          stall_limit=50)
            data._worker = lambda: (worker, 2)
            got = list(data)
            assert len(got) == 3                                   # its share of the rank's 6
            assert {k for b in got for k in b.keys} <= every
