"""A first look at frozen on a tiny random language model (no downloads, a few seconds).

    python -m frozen.demo

It builds a tiny random LM folder, shows that text-only generation through FrozenModel gives
exactly the bare LM's tokens, runs a few-shot image prompt, trains the vision side for a few
steps through the frozen LM, and saves and reloads the result. The outputs of a random model
are gibberish by design: this checks the machinery, not the quality.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import torch
from PIL import Image


def main() -> None:
    from frozen import FrozenConfig, FrozenModel, Target
    from frozen.testing import TINY_VISION, make_tiny_lm_dir

    logging.disable(logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    workdir = Path(tempfile.mkdtemp(prefix="frozen-demo-"))
    print(f"tiny random model (gibberish by design) in {workdir}\n")
    config = FrozenConfig(lm=make_tiny_lm_dir(workdir, "llama"), vision=TINY_VISION,
                          vision_embed_dim=16)
    model = FrozenModel(config)
    print(f"trainable (vision side): {model.num_trainable:,}   frozen (LM): {model.num_frozen:,}")

    prompts = ["Q: What is the capital of France? A:", "def fib(n):"]
    ours = model.generate(prompts, max_new_tokens=8)
    tok = model.tokenizer
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True)
    bare = model.lm.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    bare_text = tok.batch_decode(bare[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    print(f"text-only greedy output equals the bare LM's: {ours == bare_text}")

    red, blue = Image.new("RGB", (32, 32), (220, 40, 40)), Image.new("RGB", (32, 32), (40, 80, 220))
    prompt = [red, "A red square.\n", blue, "A"]
    print(f"image prompt <image>A red square.\\n<image>A -> {model.generate([prompt], max_new_tokens=6)[0]!r}")

    model.train()
    batch = model.collate([[red, Target("A red square.")], [blue, Target("A blue square.")]])
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=3e-3, betas=(0.9, 0.95))
    lm_before = {k: v.clone() for k, v in model.lm.state_dict().items()}
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = model(batch).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    unchanged = all(torch.equal(v, model.lm.state_dict()[k]) for k, v in lm_before.items())
    print(f"20 training steps: caption loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
          f"LM weights bit-identical: {unchanged}")

    folder = model.eval().save_pretrained(workdir / "saved")
    reloaded = FrozenModel.from_pretrained(folder)
    same = reloaded.generate([prompt], max_new_tokens=6) == model.generate([prompt], max_new_tokens=6)
    print(f"saved {sorted(p.name for p in folder.iterdir())}; reload gives the same output: {same}")


if __name__ == "__main__":
    main()
