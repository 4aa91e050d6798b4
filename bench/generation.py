"""Text-only generation through FrozenModel against the bare LM's own `generate`.

Both sides tokenize the same prompts, decode greedily the same number of new tokens (EOS held
off with min_new_tokens so lengths match) and detokenize; the ratio is FrozenModel / bare time.
"""

from __future__ import annotations

import torch

from .common import Row, alternated

PROMPTS = ["a big red circle on the left", "Q: what is this? A: this is a", "un grand cercle",
           "arr, a small blue square be on the right, matey", "red circle, big,", "A BIG",
           "Caption in pirate:", "this is a dax.\nthis is a"]


def run(model, repeats: int, new_tokens: int = 32) -> list[Row]:
    tok = model.tokenizer
    rows = []
    for batch_size in (1, 8):
        prompts = PROMPTS[:batch_size]

        def bare():
            tok.padding_side = "left"
            enc = tok(prompts, return_tensors="pt", padding=True)
            with torch.no_grad():
                out = model.lm.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                        do_sample=False, pad_token_id=tok.pad_token_id)
            return tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)

        def ours():
            return model.generate(prompts, max_new_tokens=new_tokens, min_new_tokens=new_tokens)

        assert ours() == bare(), "greedy parity with the bare LM is broken"
        t, cpu = alternated({"bare": bare, "ours": ours}, repeats)
        ratio = t["ours"] / t["bare"]
        tokens = batch_size * new_tokens
        rows.append(Row(f"text generation, batch {batch_size} (tokens/s)", tokens / t["ours"],
                        tokens / t["bare"], "", "time ratio <= 1.05", ratio, ratio <= 1.05,
                        f"CPU time ratio {cpu['ours'] / cpu['bare']:.2f}"))
    rows.append(static_cache_row(model, repeats, new_tokens))
    return rows


def static_cache_row(model, repeats: int, new_tokens: int) -> Row:
    """The fast decode path (static_cache=True: frozen.decoding's loop over a static cache)
    against the default loop (transformers' generate, dynamic cache), batch 8, same greedy text.

    On CPU the step runs uncompiled (compiling is the GPU default), so this shows the loop and
    the fixed cache alone; the compiled step's gain is a GPU figure (bench/gpu.py)."""
    prompts = PROMPTS[:8]
    runs = {name: (lambda static=static: model.generate(
        prompts, max_new_tokens=new_tokens, min_new_tokens=new_tokens, static_cache=static))
        for name, static in (("dynamic", False), ("static", True))}
    assert runs["static"]() == runs["dynamic"](), "static cache changed the greedy text"
    t, cpu = alternated(runs, repeats)
    tokens = 8 * new_tokens
    return Row("fast path (static cache) vs default, batch 8 (tokens/s)", tokens / t["static"],
               tokens / t["dynamic"], "", "same text; report", t["static"] / t["dynamic"],
               note=f"CPU time ratio {cpu['static'] / cpu['dynamic']:.2f}")
