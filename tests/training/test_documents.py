"""Interleaved documents without training: the MMC4 layout, bad documents counted by kind
under both bad-image policies, the window cut, label masks, the pair/document mix, the
OBELICS converter and the shapes-world writer."""

from __future__ import annotations

import random

import pytest
import torch

import document_shards as docs
from frozen.data import SKIP_KINDS, expand_shards
from frozen.data.documents import DocumentRules, TokenBudget, decode_document
from frozen.data.mixing import DocumentStream, MixedStream, is_document_batch
from frozen.images import ImageTransform
from frozen.prompts import IGNORE_INDEX, Target, prompt_text

TRANSFORM = ImageTransform(32)


class WordTokenizer:
    """One token per space-separated word (so token counts are easy to see in a test)."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [7] * len(text.split())}


def budget(max_tokens: int = 512, n: int = 2) -> TokenBudget:
    return TokenBudget(WordTokenizer(), n, max_tokens, num_special=1)


def document_stream(spec, batches: int, batch_size: int = 2, rules=None, max_tokens=512, **kw):
    kw.setdefault("resampled", False)
    kw.setdefault("shuffle_buffer", 0)
    return DocumentStream(expand_shards(spec), TRANSFORM, lambda rows: rows, batch_size, batches,
                          rules or DocumentRules(max_images=4), budget(max_tokens), **kw)


def tally_of(batches) -> dict[str, int]:
    total = sum(b.tally for b in batches)
    return {"good": int(total[0]), **{k: int(v) for k, v in zip(SKIP_KINDS, total[1:]) if v}}


@pytest.fixture(scope="module")
def bad_shard(tmp_path_factory):
    """4 good documents, one document of each bad kind, 4 good documents (one shard)."""
    rng = random.Random(0)
    bad = docs.bad_documents()
    good = lambda prefix: [docs.good_document(f"{prefix}{i}", rng) for i in range(4)]
    path = docs.write_documents(tmp_path_factory.mktemp("docs") / "00000.tar",
                                good("a") + [sample for sample, _ in bad] + good("c"))
    return str(path), [counts for _, counts in bad]


@pytest.mark.parametrize("policy", ["drop_image", "drop_document"])
def test_bad_documents_are_skipped_and_counted_by_kind(bad_shard, policy):
    path, per_document = bad_shard
    expected = {"good": 8}
    for counts in per_document:
        for kind, n in counts[policy].items():
            expected[kind] = expected.get(kind, 0) + n
    rules = DocumentRules(max_images=4, bad_image=policy)
    batches = list(document_stream(path, batches=expected["good"], batch_size=1, rules=rules))
    assert tally_of(batches) == expected
    keys = [k for b in batches for k in b.keys]
    kept_bad = {"xcorrupt", "xcut", "xb64"} if policy == "drop_image" else set()
    assert {k for k in keys if k.startswith("x")} == kept_bad
    for batch in batches:
        for items in batch.prompts:
            images = [it for it in items if isinstance(it, torch.Tensor)]
            assert images and all(im.shape == (3, 32, 32) for im in images)
            assert isinstance(items[-1], Target)


def test_mmc4_layout_images_go_before_their_sentences(tmp_path):
    red, blue = docs.image_bytes(docs.COLORS["red"]), docs.image_bytes(docs.COLORS["blue"])
    texts = ["intro one.", " intro two. ", "first.", "", "second.", "tail."]
    sample = {"__key__": "k", "json": docs.mmc4_json(texts, [(4, blue), (2, red), (4, red)])}
    doc = decode_document(sample, TRANSFORM, DocumentRules(), budget())
    assert prompt_text(doc.items) == "intro one. intro two.<image>first.<image><image>second. tail."
    assert doc.num_images == 3 and doc.dropped == []
    reddish = lambda image: image[0].float().mean() > image[2].float().mean()    # (3, S, S)
    # Images matched to one sentence keep their image_info order (blue, then red).
    assert [reddish(it) for it in doc.items if isinstance(it, torch.Tensor)] == [True, False, True]


def test_images_as_named_members(tmp_path):
    import json

    sample = {"__key__": "k", "img0.jpg": docs.image_bytes(docs.COLORS["red"]),
              "json": json.dumps({"text_list": ["a.", "b."], "image_info": [
                  {"matched_text_index": 1, "image_name": "IMG0.jpg"}]}).encode()}
    doc = decode_document(sample, TRANSFORM, DocumentRules(), budget())
    assert prompt_text(doc.items) == "a.<image>b." and doc.num_images == 1


def test_the_window_cut_never_splits_an_image_and_counts_what_is_left():
    red = docs.image_bytes(docs.COLORS["red"])
    words = lambda n: " ".join(["w"] * n)
    sample = {"__key__": "k", "json": docs.mmc4_json([words(3), words(4), words(4)],
                                                     [(1, red), (2, red)])}
    full = lambda max_tokens: decode_document(sample, TRANSFORM, DocumentRules(), budget(max_tokens))
    # BOS 1 + 3 words + 2 slots + 4 words + 2 slots + 4 words + EOS 1 = 17 tokens.
    assert full(17).num_images == 2
    # At 11 the second image's slots would end at 12 (with one word after it at 13): dropped,
    # and not decoded; the text before it stays whole (the collate cuts its tail).
    cut = full(11)
    assert prompt_text(cut.items) == f"{words(3)}<image>{words(4)}" and cut.num_images == 1
    # At 7 the first image has no room for a word after it: no image is left.
    from frozen.data import SampleSkipped

    with pytest.raises(SampleSkipped) as skipped:
        full(7)
    assert skipped.value.kind == "too_few_images"


def test_label_masks_text_only_and_optionally_after_the_first_image(lm_dirs):
    from frozen import FrozenConfig, FrozenModel
    from tiny import TINY_VISION

    model = FrozenModel(FrozenConfig(lm=lm_dirs("llama"), vision=TINY_VISION, num_prefix_tokens=2))
    red = docs.image_bytes(docs.COLORS["red"])
    sample = {"__key__": "k", "json": docs.mmc4_json(["before the image.", "after it.", "more."],
                                                     [(1, red)])}
    collate = model.collator()
    rules = lambda loss_on: DocumentRules(loss_on=loss_on)
    rows = [decode_document(sample, model.image_transform, rules(loss_on),
                            TokenBudget.of_collator(collate)).items
            for loss_on in ("text", "text_after_image")]
    short = [rows[0][-2], rows[0][-1]]                       # <image>after it. more.  (padded)
    batch = collate(rows + [short])
    tok = model.tokenizer
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]
    before, after, eos = ids("before the image."), ids("after it. more."), [tok.eos_token_id]
    for row, labelled_before in ((0, True), (1, False), (2, None)):
        real = batch.attention_mask[row].bool()
        labels, image = batch.labels[row][real], batch.image_mask[row][real]
        assert (labels[image] == IGNORE_INDEX).all() and int(image.sum()) == 2
        assert (batch.labels[row][~real] == IGNORE_INDEX).all()           # padding
        expected = (before if labelled_before else []) + after + eos
        assert labels[labels != IGNORE_INDEX].tolist() == expected
        text = batch.input_ids[row][real][~image].tolist()
        assert text == list(collate.processor.prefix_ids) + (before if labelled_before is not None else []) \
            + after + eos


def test_a_fixed_fraction_of_batches_are_documents():
    for ratio in (0.0, 0.25, 0.5, 1 / 3, 0.9, 1.0):
        picks = [is_document_batch(i, ratio) for i in range(120)]
        for n in (1, 7, 60, 120):
            assert sum(picks[:n]) == int(n * ratio + 1e-9)


@pytest.mark.parametrize("workers", [0, 2])
def test_the_mix_takes_each_stream_with_its_own_batch_size(tmp_path, good_shards, workers):
    from frozen.data import CaptionStream

    doc_spec = docs.write_good_documents(tmp_path / "docs", 2, 12)
    pairs = CaptionStream(expand_shards(good_shards), TRANSFORM, lambda rows: rows, 4, 9,
                          resampled=False, shuffle_buffer=0)
    mixed = MixedStream(pairs, document_stream(doc_spec, 9, batch_size=3), 1 / 3, batches=9)
    loader = torch.utils.data.DataLoader(mixed, batch_size=None, num_workers=workers)
    batches = list(loader)
    sizes = [len(b.keys) for b in batches]
    assert sizes == [4, 4, 3] * 3
    doc_keys = [k for b in batches if len(b.keys) == 3 for k in b.keys]
    assert all(k.startswith("d") for k in doc_keys) and len(set(doc_keys)) == 9
    assert sum(int(b.tally[0]) for b in batches) == 6 * 4 + 9


def test_obelics_parquet_converts_to_readable_shards(tmp_path):
    pytest.importorskip("pyarrow")
    from frozen.data.obelics import convert, main

    files, expected = docs.write_obelics(tmp_path / "parquet", tmp_path / "images")

    pattern, counts = convert([str(f) for f in files], tmp_path / "shards", tmp_path / "images",
                              per_shard=4)
    assert dict(counts) == expected
    assert pattern.endswith("{00000..00001}.tar")
    for policy, good, missing in (("drop_image", 6, 2), ("drop_document", 5, 1)):
        batches = list(document_stream(pattern, good, 1, DocumentRules(bad_image=policy)))
        assert tally_of(batches) == {"good": good, "missing_image": missing}
    texts = [prompt_text(b.prompts[0]) for b in
             document_stream(pattern, 6, 1, DocumentRules(bad_image="drop_image"))]
    assert texts[:3] == ["an intro.<image>a red picture.<image>a blue one.",
                         "<image>a yellow picture first.<image>then red.",
                         "only text then an image.<image>more text."]
    assert texts[3] == "start.<image>a green picture. a linked picture. a lost one."
    main([str(f) for f in files] + ["--out", str(tmp_path / "cli"), "--image-root",
                                    str(tmp_path / "images")])
    assert len(list((tmp_path / "cli").glob("*.tar"))) == 1


def test_obelics_refuses_files_without_the_columns(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from frozen.data.obelics import main

    pq.write_table(pa.table({"text": ["a"]}), tmp_path / "x.parquet")
    with pytest.raises(SystemExit, match=r"no column\(s\) \['images', 'texts'\]"):
        main([str(tmp_path / "x.parquet"), "--out", str(tmp_path / "out")])


def test_shapes_documents_hold_plain_captions_only(tmp_path):
    from frozen.toy import HELD_OUT
    from frozen.toy.documents import write_documents

    pattern = write_documents(tmp_path / "shapes", 12, per_shard=5)
    batches = list(document_stream(pattern, 12, 1, DocumentRules(min_images=2, max_images=4)))
    assert tally_of(batches) == {"good": 12}
    for batch in batches:
        text = prompt_text(batch.prompts[0])
        captions = [part.split(".")[0] for part in text.split("<image>")[1:]]
        assert 2 <= len(captions) <= 4
        for caption in captions:
            words = caption.split()
            assert words[0] == "a" and words[4:6] == ["on", "the"] and len(words) == 7
            assert caption == caption.lower() and (words[2], words[3]) not in HELD_OUT


def test_a_tally_saved_before_the_document_kinds_still_loads():
    from frozen.data import SkipTally
    from frozen.data.skips import TALLY_SIZE

    old = torch.arange(TALLY_SIZE - 3)               # [good, 8 pair kinds]: no document kinds
    tally = SkipTally()
    tally.load_state_dict({"vector": old})
    tally.add(torch.ones(TALLY_SIZE, dtype=torch.long))
    assert tally.good == 1 and tally.counts()["too_many_images"] == 1
    assert tally.counts()["unreadable_shard"] == 8 + 1
