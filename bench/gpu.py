"""The GPU set: a Llama-2-7B-shaped LM with random bf16 weights built on the device.

    python -m bench --gpu

Decode tokens/s at batch 1 and 16 against the bandwidth bound (weight bytes / measured
device-to-device copy bandwidth); training samples/s, MFU (frozen.training.mfu, the accounting
train.py logs: 4N FLOPs per LM token plus 3x the vision tower's forward FLOPs per image) and
peak memory per batch size.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch

from .common import Row

LLAMA2_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                 bos_token_id=1, eos_token_id=2, pad_token_id=0)


def build_model(folder: Path, vision: str | None):
    """A FrozenModel around a random Llama-2-7B-shaped LM, built on the GPU in bf16."""
    from transformers import LlamaConfig

    from frozen import FrozenConfig, FrozenModel
    from frozen.testing import make_tiny_tokenizer

    LlamaConfig(**LLAMA2_7B).save_pretrained(folder)
    make_tiny_tokenizer(vocab_size=320).save_pretrained(folder)  # ids < 320: fine for benchmarks
    model = FrozenModel(FrozenConfig(lm=str(folder), vision=vision, dtype="bfloat16",
                                     lm_device="cuda"))
    return model.cuda()


def copy_bandwidth(gib: float = 4.0) -> float:
    """Bytes/s of a device-to-device copy (read + write)."""
    src = torch.empty(int(gib * 2**30), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        dst.copy_(src)
    torch.cuda.synchronize()
    return 2 * src.numel() * 10 / (time.perf_counter() - start)


def decode_rows(model, bandwidth: float, new_tokens: int = 128) -> list[Row]:
    weight_bytes = sum(p.numel() * p.element_size() for p in model.lm.parameters())
    bound = bandwidth / weight_bytes                                # tokens/s at batch 1
    rows = []
    for batch in (1, 16):
        prompts = ["the quick brown fox"] * batch
        model.generate(prompts, max_new_tokens=8, min_new_tokens=8)
        torch.cuda.synchronize()
        start = time.perf_counter()
        model.generate(prompts, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
        torch.cuda.synchronize()
        steps_per_s = new_tokens / (time.perf_counter() - start)
        rows.append(Row(f"7B decode, batch {batch} (tokens/s)", steps_per_s * batch, bound * batch,
                        "", ">= 80% of bound at batch 1", steps_per_s / bound,
                        steps_per_s / bound >= 0.8 if batch == 1 else None))
    return rows


def train_rows(model, batch_sizes=(8, 16, 32), caption_tokens: int = 32) -> list[Row]:
    from frozen import Target
    from frozen.training.mfu import StepFlops, mfu, peak_bf16_flops

    peak = peak_bf16_flops("cuda") or float("nan")        # an unknown GPU: no MFU
    step_flops = StepFlops.of(model)
    size = model.image_transform.size
    rows = []
    model.train()
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=3e-4, betas=(0.9, 0.95))
    for batch_size in batch_sizes:
        samples = [[torch.randint(0, 255, (3, size, size), dtype=torch.uint8),
                    Target(" ".join(["word"] * (caption_tokens - 1)))] for _ in range(batch_size)]
        batch = model.collate(samples).to("cuda")
        torch.cuda.reset_peak_memory_stats()
        try:
            for step in range(6):
                if step == 2:
                    torch.cuda.synchronize()
                    start = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = model(batch).loss
                loss.backward()
                optimizer.step()
            torch.cuda.synchronize()
        except torch.OutOfMemoryError:
            rows.append(Row(f"7B train step, batch {batch_size}", 0, 0, "", "fits", note="out of memory"))
            break
        seconds = (time.perf_counter() - start) / 4
        tokens = batch.attention_mask.sum().item()
        utilisation = mfu(step_flops(tokens, batch_size), seconds, peak)
        gib = torch.cuda.max_memory_allocated() / 2**30
        rows.append(Row(f"7B train step, batch {batch_size} (samples/s; MFU)", batch_size / seconds,
                        0.0, "", "MFU >= 45%", utilisation, utilisation >= 0.45,
                        f"MFU {utilisation:.1%}, peak {gib:.1f} GiB"))
    return rows


def run(args) -> list[Row]:
    if not torch.cuda.is_available():
        raise SystemExit("--gpu needs CUDA; none is available here")
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(Path(tmp), vision="ViT-B-16")
        rows = decode_rows(model, copy_bandwidth())
        rows += train_rows(model)
    print(json.dumps({"device": torch.cuda.get_device_name()}))
    return rows
