"""Text-only accuracy of a shapes-world language model folder.

    python -m frozen.toy.check_lm DIR [--queries 200] [--seed 20250]

Every task of the shapes world is posed with text stand-ins in place of images and
answered with greedy decoding by the plain Hugging Face ``model.generate``; the
score is exact match of the read answer. The final system (images through a learned
prefix) is held to these targets, so the text-only model must clear them by a margin:
plain >= 0.95, held-out >= 0.60, style 4-shot >= 0.80 each, instruction 4-shot >= 0.80,
fast binding 2-way >= 0.90, 4-way >= 0.70.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from frozen.threads import set_cpu_threads
from frozen.toy.captions import STYLES
from frozen.toy.prompts import (
    Episode,
    sample_binding_episode,
    sample_caption_episode,
    sample_instruction_episode,
    sample_style_episode,
)
from frozen.toy.standins import standin

DEFAULT_SEED = 20250
"""Seed of the reported measurement; never used to build or tune the model."""


@dataclass(frozen=True)
class TextTask:
    """A named text-only task: an episode sampler and the accuracy it must reach."""

    name: str
    sample: Callable[[np.random.Generator], Episode]
    target: float


def text_tasks(shots: int = 4) -> list[TextTask]:
    """The scored tasks, with images replaced by stand-ins."""
    tasks = [
        TextTask("plain zero-shot", lambda rng: sample_caption_episode(rng, image=standin), 0.95),
        TextTask("held-out zero-shot",
                 lambda rng: sample_caption_episode(rng, image=standin, split="heldout"), 0.60),
    ]
    for style in STYLES:
        tasks.append(TextTask(f"style {shots}-shot {style}",
                              lambda rng, s=style: sample_style_episode(rng, s, shots, image=standin), 0.80))
    for style in STYLES:
        tasks.append(TextTask(f"instruction {shots}-shot {style}",
                              lambda rng, s=style: sample_instruction_episode(rng, s, shots, image=standin), 0.80))
    tasks.append(TextTask("binding 2-way", lambda rng: sample_binding_episode(rng, 2, image=standin), 0.90))
    tasks.append(TextTask("binding 4-way", lambda rng: sample_binding_episode(rng, 4, image=standin), 0.70))
    return tasks


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 24, batch_size: int = 100) -> list[str]:
    """Greedy continuations of text prompts, decoded without special tokens."""
    outputs = []
    tokenizer.padding_side = "left"
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
        ids = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
        new = ids[:, batch["input_ids"].shape[1] :]
        outputs += tokenizer.batch_decode(new, skip_special_tokens=True)
    return outputs


def accuracy(model, tokenizer, task: TextTask, queries: int, seed: int) -> float:
    """Exact-match accuracy of ``model`` on ``queries`` fresh episodes of ``task``."""
    rng = np.random.default_rng(seed)
    episodes = [task.sample(rng) for _ in range(queries)]
    generated = generate(model, tokenizer, ["".join(e.prompt) for e in episodes])
    return float(np.mean([e.is_correct(g) for e, g in zip(episodes, generated)]))


def check(folder: Path | str, queries: int = 200, seed: int = DEFAULT_SEED, shots: int = 4) -> dict[str, float]:
    """Accuracy of every text task of the LM folder ``folder`` (see ``check_model``)."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    return check_model(model, tokenizer, queries, seed, shots)


def check_model(model, tokenizer, queries: int = 200, seed: int = DEFAULT_SEED, shots: int = 4,
                only: Collection[str] | None = None) -> dict[str, float]:
    """Accuracy of every text task (or of the tasks named in ``only``); each task draws from its
    own seed derived from ``seed``."""
    tasks = text_tasks(shots)
    if only is not None:
        unknown = sorted(set(only) - {task.name for task in tasks})
        if unknown:
            raise ValueError(f"unknown text task(s) {unknown}; known: {[task.name for task in tasks]}")
    return {task.name: accuracy(model, tokenizer, task, queries, seed * 1000 + index)
            for index, task in enumerate(tasks) if only is None or task.name in only}


def missed_targets(results: dict[str, float], shots: int = 4) -> list[str]:
    """The tasks of ``results`` below their target."""
    targets = {task.name: task.target for task in text_tasks(shots)}
    return [name for name, value in results.items() if value < targets[name]]


def report(results: dict[str, float], queries: int, seed: int, shots: int = 4) -> list[str]:
    """A markdown table of ``check``'s results against the targets, and the tasks that miss."""
    targets = {task.name: task.target for task in text_tasks(shots)}
    lines = [f"| task | accuracy ({queries} queries, seed {seed}) | target for the image system |",
             "|---|---|---|",
             *[f"| {name} | {value:.3f} | {targets[name]:.2f} |" for name, value in results.items()]]
    instruction = [name for name in results if name.startswith("instruction")]
    if instruction:     # the image system's instruction target is on the average over styles
        average = np.mean([results[name] for name in instruction])
        lines.append(f"| instruction {shots}-shot average | {average:.3f} | {targets[instruction[0]]:.2f} |")
    missed = missed_targets(results, shots)
    if missed:
        lines.append(f"\nBELOW TARGET in text already (the image system cannot do better): "
                     f"{', '.join(missed)}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: chosen by frozen.threads)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        set_cpu_threads()
    results = check(args.folder, args.queries, args.seed, args.shots)
    print("\n".join(report(results, args.queries, args.seed, args.shots)))


if __name__ == "__main__":
    main()
