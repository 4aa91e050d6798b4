"""A training step of the shapes-world config against the bare LM on the same tokens, and the
peak memory of a step with the LM's blocks checkpointed or not.

Baseline: forward + backward of the bare frozen LM on the same token batch, the gradient taken
with respect to its input embeddings (what training through a frozen LM costs). Candidate: the
full FrozenModel step (vision tower + head + splice + the same LM pass).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from .common import Row, interleaved_medians

TOY_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "toy.yaml"
CAPTIONS = ["a big red circle on the left", "a small blue square on the right",
            "a big green triangle on the left", "a small yellow diamond on the right"]


def toy_frozen_config(lm_dir: str):
    """The FrozenConfig of configs/toy.yaml, with the LM folder replaced by `lm_dir`."""
    from frozen import FrozenConfig

    fields = dict(yaml.safe_load(TOY_CONFIG.read_text())["model"]["frozen"])
    fields["lm"] = lm_dir
    return FrozenConfig(**fields)


def make_batch(model, batch_size: int, seed: int = 0, pairs: int = 1):
    """`batch_size` sequences of `pairs` image-caption pairs each (packed as the Packer does)."""
    from frozen import Target

    gen = torch.Generator().manual_seed(seed)
    size = model.image_transform.size
    samples = []
    for i in range(batch_size):
        items: list = []
        for j in range(pairs):
            caption = CAPTIONS[(i * pairs + j) % len(CAPTIONS)]
            items += [torch.randn(3, size, size, generator=gen),
                      Target(caption if j == pairs - 1 else caption + "\n")]
        samples.append(items)
    return model.collate(samples)


def bare_step(model, batch) -> None:
    """Forward + backward of the bare LM on the batch's tokens (image slots as plain tokens)."""
    embeds = model.lm.get_input_embeddings()(batch.input_ids).detach().requires_grad_(True)
    logits = model.lm(inputs_embeds=embeds, attention_mask=batch.attention_mask,
                      position_ids=batch.position_ids, use_cache=False).logits
    targets = batch.labels[:, 1:]
    keep = targets != -100
    F.cross_entropy(logits[:, :-1][keep].float(), targets[keep]).backward()


def frozen_step(model, batch) -> None:
    model.zero_grad(set_to_none=True)
    model(batch).loss.backward()


def run(lm_dir: str, repeats: int, batch_size: int = 32) -> list[Row]:
    from frozen import FrozenModel

    model = FrozenModel(toy_frozen_config(lm_dir)).train()
    batch = make_batch(model, batch_size)
    t = interleaved_medians({"bare": lambda: bare_step(model, batch),
                             "frozen": lambda: frozen_step(model, batch)}, repeats)
    overhead = t["frozen"] / t["bare"] - 1
    rows = [Row(f"training step, shapes config, batch {batch_size} (samples/s)",
                batch_size / t["frozen"], batch_size / t["bare"], "",
                "vision + splice overhead <= 30%", t["frozen"] / t["bare"], overhead <= 0.30,
                f"overhead {overhead:+.0%}")]
    rows.append(packing_row(model, batch_size, repeats))
    peaks = {mode: peak_step_memory(lm_dir, batch_size, mode == "checkpointed")
             for mode in ("plain", "checkpointed")}
    rows.append(Row(f"peak step memory, batch {batch_size} (MiB; ckpt vs not)",
                    peaks["checkpointed"], peaks["plain"], "", "report both",
                    peaks["checkpointed"] / peaks["plain"]))
    return rows


def packing_row(model, pairs_per_step: int, repeats: int, pack: int = 4) -> Row:
    """Image-caption pairs/s with `pack` pairs per sequence against one pair per sequence,
    the same number of pairs per step."""
    single = make_batch(model, pairs_per_step)
    packed = make_batch(model, pairs_per_step // pack, pairs=pack)
    t = interleaved_medians({"single": lambda: frozen_step(model, single),
                             "packed": lambda: frozen_step(model, packed)}, repeats)
    return Row(f"training step, {pack} pairs per sequence vs 1 (pairs/s)",
               pairs_per_step / t["packed"], pairs_per_step / t["single"], "", "report",
               t["packed"] / t["single"])


def peak_step_memory(lm_dir: str, batch_size: int, checkpointed: bool) -> float:
    """Peak resident-memory growth (MiB) of one training step, in a fresh process."""
    code = (f"import json; from bench.train_step import _measure_peak; "
            f"print(json.dumps(_measure_peak({lm_dir!r}, {batch_size}, {checkpointed})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure_peak(lm_dir: str, batch_size: int, checkpointed: bool) -> float:
    from frozen import FrozenModel
    from frozen.training.blocks import checkpoint_blocks

    model = FrozenModel(toy_frozen_config(lm_dir)).train()
    if checkpointed:
        checkpoint_blocks(model.lm, model.lm_traits)
    batch = make_batch(model, batch_size)
    Path("/proc/self/clear_refs").write_text("5")      # reset the high-water mark (Linux)
    before = _status_kib("VmRSS")
    frozen_step(model, batch)
    return max(_status_kib("VmHWM") - before, 0) / 1024.0


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"cannot read {field} from /proc/self/status")
