"""The GPU set: a Llama-2-7B-shaped LM with random bf16 weights built on the device.

    python -m bench --gpu              # on a CUDA device (about 5 minutes on one H100)
    python -m bench --gpu --dry-run    # the same code on the CPU with a tiny Llama: checks the
                                       # logic end to end; its figures mean nothing

Decode: tokens/s of `FrozenModel.generate` at batch 1 and 16, on the default loop
(transformers' generate, dynamic cache) and on the fast path (`static_cache=True`: static
cache, compiled one-token step), and of the bare LM's own `generate` as an independent
reference, each against the bandwidth bound (weight bytes / measured device copy bandwidth);
the first-call compile time of the fast path. Training: samples/s, MFU (4N FLOPs per LM token
plus 3x the vision tower's forward FLOPs per image; frozen.training.mfu, the accounting
train.py logs) and peak memory per batch size.

How decode is timed. An earlier version of this file reported a third of what a plain timing
of `generate` gave on the same GPU: it timed one single call, the first ever made at that
length (its warm-up made 8 tokens, so the allocator met every later cache size, and every
new block, for the first time inside the timed call), and counted the tokens it had asked
for. Now:
- each configuration first runs once at every timed shape (compile, allocator, kernels);
- each figure is the median of repeats of whole calls, synchronised before and after;
- tokens are counted from the ids that came back, not from the request;
- decode tokens/s is the slope between two lengths, B * (N2 - N1) / (t(N2) - t(N1)), so the
  prefill and the text handling cancel; the plain whole-call rate B * N2 / t(N2), what a user
  timing `generate` sees, is printed beside it, and the two must agree within 15%.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from .common import Row

LLAMA2_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                 bos_token_id=1, eos_token_id=2, pad_token_id=0)
TINY_LLAMA = dict(LLAMA2_7B, vocab_size=320, hidden_size=32, intermediate_size=64,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                  max_position_embeddings=512)


@dataclasses.dataclass
class Setup:
    """What the set runs on: the real GPU shape, or the CPU dry run."""

    device: str
    lm: dict
    vision: str | dict | None
    dtype: str
    batches: tuple[int, ...]
    lengths: tuple[int, int]          # (N1, N2) new tokens for the decode slope
    prompt_tokens: int                # T: T + N1 and T + N2 share one cache-length bucket
    repeats: int
    train_batches: tuple[int, ...]
    backend: str = "inductor"
    vision_embed_dim: int = 512       # for a dict (custom) tower only


GPU = Setup("cuda", LLAMA2_7B, "ViT-B-16", "bfloat16", (1, 16), (16, 112), 136, 3, (8, 16, 32))
DRY_RUN = Setup("cpu", TINY_LLAMA, {"layers": [1, 1, 1, 1], "width": 8, "image_size": 32},
                "float32", (1, 4), (4, 12), 70, 2, (2,), backend="aot_eager", vision_embed_dim=16)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def build_model(folder: Path, setup: Setup):
    """A FrozenModel around a random LM of the setup's shape, built on its device."""
    from transformers import LlamaConfig

    from frozen import FrozenConfig, FrozenModel
    from frozen.testing import make_tiny_tokenizer

    LlamaConfig(**setup.lm).save_pretrained(folder)
    make_tiny_tokenizer(vocab_size=320).save_pretrained(folder)  # ids < 320: fine for benchmarks
    model = FrozenModel(FrozenConfig(lm=str(folder), vision=setup.vision, dtype=setup.dtype,
                                     lm_device=setup.device,
                                     vision_embed_dim=setup.vision_embed_dim))
    model.decoder.backend = setup.backend
    return model.to(setup.device).eval()


def copy_bandwidth(device: str, gib: float = 4.0) -> float:
    """Bytes/s of a device-to-device copy (read + write)."""
    src = torch.empty(int(gib * 2**30), dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(device)
    start = time.perf_counter()
    for _ in range(10):
        dst.copy_(src)
    sync(device)
    return 2 * src.numel() * 10 / (time.perf_counter() - start)


def timed(fn: Callable[[], int], device: str, repeats: int) -> tuple[float, int]:
    """(median seconds, tokens) of whole calls of fn, which returns the tokens it made."""
    times, tokens = [], set()
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        tokens.add(fn())
        sync(device)
        times.append(time.perf_counter() - start)
    assert len(tokens) == 1, f"calls made different token counts: {tokens}"
    return statistics.median(times), tokens.pop()


def decode_fns(model, prompts: list[str]) -> dict[str, Callable[[int], int]]:
    """name -> fn(new_tokens) that decodes greedily and returns the new tokens it made."""
    from frozen import SamplingOptions
    from frozen.generation import generate_ids

    tok = model.tokenizer

    def frozen_path(static: bool) -> Callable[[int], int]:
        def run(n: int) -> int:
            # What FrozenModel.generate does, keeping the ids so that they can be counted.
            rows, _ = model.processor.prompt_rows(prompts, None, "error", n)
            batch = model._batch(rows)
            options = SamplingOptions(max_new_tokens=n, min_new_tokens=n, static_cache=static,
                                      compile=static or None)
            with torch.no_grad():
                ids = generate_ids(model.decoder, tok, model.embed(batch), batch.attention_mask, options)
            tok.batch_decode(ids, skip_special_tokens=True)
            return ids.numel()
        return run

    def bare(n: int) -> int:
        tok.padding_side = "left"
        enc = tok(prompts, return_tensors="pt", padding=True).to(model.device)
        with torch.no_grad():
            out = model.lm.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                    pad_token_id=tok.pad_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        tok.batch_decode(new, skip_special_tokens=True)
        return new.numel()

    return {"default": frozen_path(False), "fast": frozen_path(True), "bare generate": bare}


def prompt_of(model, tokens: int, lengths: tuple[int, int]) -> str:
    """A prompt of about `tokens` tokens whose cache needs for N1 and N2 new tokens fall in one
    cache-length bucket (so the fast path compiles once per batch size)."""
    from frozen.decoding import cache_length

    words = ["the"]
    while len(model.tokenizer(" ".join(words)).input_ids) < tokens:
        words.append(["quick", "brown", "fox", "jumps"][len(words) % 4])
    text = " ".join(words)
    size = len(model.tokenizer(text).input_ids)
    buckets = {cache_length(size + n, model.context_length) for n in lengths}
    assert len(buckets) == 1, f"prompt of {size} tokens: N1, N2 need cache lengths {buckets}"
    return text


def decode_rows(model, setup: Setup, bandwidth: float) -> list[Row]:
    weight_bytes = sum(p.numel() * p.element_size() for p in model.lm.parameters())
    bound = bandwidth / weight_bytes                                # tokens/s at batch 1
    n1, n2 = setup.lengths
    rows = []
    for batch in setup.batches:
        prompts = [prompt_of(model, setup.prompt_tokens, setup.lengths)] * batch
        for name, fn in decode_fns(model, prompts).items():
            if name == "bare generate" and batch != 1:
                continue
            fn(n2)                                                  # warm-up at both shapes
            fn(n1)
            (t1, k1), (t2, k2) = (timed(lambda n=n: fn(n), setup.device, setup.repeats)
                                  for n in (n1, n2))
            assert (k1, k2) == (batch * n1, batch * n2), f"{name}: made {k1}, {k2} tokens"
            rate, whole = (k2 - k1) / (t2 - t1), k2 / t2
            fraction = rate / (bound * batch)
            agree = abs(whole / rate - 1) <= 0.15
            rows.append(Row(f"decode, batch {batch}, {name} (tokens/s; bound)", rate,
                            bound * batch, "", ">= 80% of bound" if batch == 1 else "report",
                            fraction, fraction >= 0.8 if batch == 1 and name == "fast" else None,
                            f"{fraction:.0%} of bound; whole call {whole:.4g} tokens/s"
                            f"{'' if agree else ' DISAGREES with the slope'}"))
    rows.append(compile_row(model))
    return rows


def compile_row(model) -> Row:
    seconds = model.decoder.compile_seconds
    worst = max(seconds.values(), default=0.0)
    return Row("fast path, first call's compile (s, worst shape)", worst, 0.0, "",
               "report; once per (batch, cache length) per process",
               note=f"{len(seconds)} shapes compiled")


def train_rows(model, setup: Setup, caption_tokens: int = 32) -> list[Row]:
    from frozen import Target
    from frozen.training.mfu import StepFlops, mfu, peak_bf16_flops

    peak = peak_bf16_flops(setup.device) or float("nan")     # CPU or an unknown GPU: no MFU
    step_flops = StepFlops.of(model)
    cuda = setup.device == "cuda"
    size = model.image_transform.size
    rows = []
    model.train()
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=3e-4, betas=(0.9, 0.95))
    for batch_size in setup.train_batches:
        samples = [[torch.randint(0, 255, (3, size, size), dtype=torch.uint8),
                    Target(" ".join(["word"] * (caption_tokens - 1)))] for _ in range(batch_size)]
        batch = model.collate(samples).to(setup.device)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        try:
            for step in range(6):
                if step == 2:
                    sync(setup.device)
                    start = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(setup.device, dtype=torch.bfloat16, enabled=cuda):
                    loss = model(batch).loss
                loss.backward()
                optimizer.step()
            sync(setup.device)
        except torch.OutOfMemoryError:
            rows.append(Row(f"train step, batch {batch_size}", 0, 0, "", "fits", note="out of memory"))
            break
        seconds = (time.perf_counter() - start) / 4
        tokens = batch.attention_mask.sum().item()
        utilisation = mfu(step_flops(tokens, batch_size), seconds, peak)
        gib = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
        rows.append(Row(f"train step, batch {batch_size} (samples/s; MFU)", batch_size / seconds,
                        0.0, "", "MFU >= 45%", utilisation, utilisation >= 0.45,
                        f"MFU {utilisation:.1%}, peak {gib:.1f} GiB"))
    return rows


def run(args) -> list[Row]:
    setup = DRY_RUN if getattr(args, "dry_run", False) else GPU
    if setup.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--gpu needs CUDA; none is available here (--dry-run runs its logic on "
                         "the CPU with a tiny model)")
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(Path(tmp), setup)
        rows = decode_rows(model, setup, copy_bandwidth(setup.device, 4.0 if setup.device == "cuda" else 0.05))
        rows += train_rows(model, setup)
    name = torch.cuda.get_device_name() if setup.device == "cuda" else "cpu (dry run)"
    print(json.dumps({"device": name}))
    return rows
