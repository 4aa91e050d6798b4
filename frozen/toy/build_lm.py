"""Build the shapes-world language model: tokenizer, then causal-LM pretraining on the corpus.

    python -m frozen.toy.build_lm --out DIR [--seed 0]

Writes a standard Hugging Face model folder (``config.json``, ``model.safetensors``,
``generation_config.json``, tokenizer files) loadable with ``AutoModelForCausalLM`` /
``AutoTokenizer``, plus a README.md recording the command, how long it took, and the LM's
text-only accuracy measured at the end of the build (``check_lm``: captioning, styles,
instructions and fast binding, on a seed never used to build or tune an LM).
Deterministic for a given seed and thread count.

The model is a small Llama with UNTIED input and output embeddings initialized with a
large standard deviation (0.1): with tied, small-init embeddings interchangeable words
(left / right) collapse to one vector and cannot be copied from context. With
``standin_noise`` > 0 the stand-in input embeddings get Gaussian noise during pretraining,
so the model also reads slightly-off vectors in their place (what a learned visual prefix
gives it). With ``standin_mix`` > 0 that fraction of stand-ins is read mixed with random tokens
of the whole vocabulary, and ``--shuffle-standins P`` writes each image's stand-ins in a random
order with chance P; ``--init-from`` continues an existing LM folder. The shipped LM is the
base build continued this way (its README.md gives both commands).

Fast binding needs a look-up-and-copy circuit that a small LM forms late, and for some seeds
not within the recipe's steps. So after its steps a build checks binding in text on its own
seed (``ROUND_CHECK_SEED``) and, while that misses the target, trains another round of
``round_steps`` (at most ``binding_rounds``; ``--binding-rounds 0`` skips the check).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import random
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from frozen.atomic import replacing_files, write_text
from frozen.toy.check_lm import DEFAULT_SEED, check_model, missed_targets, report
from frozen.toy.corpus import TARGET, CorpusMix, Document, documents, vocabulary_texts
from frozen.toy.standins import STANDIN_TOKENS
from frozen.toy.tokenizer import train_tokenizer

BINDING_TASKS = ("binding 2-way", "binding 4-way")
ROUND_CHECK_SEED = 20249
"""Seed of the build's own binding check, which decides on another round; never the reported
check's (``check_lm.DEFAULT_SEED``)."""
ROUND_CHECK_QUERIES = 100
ROUND_STREAM_STRIDE = 1_000_003
"""Round r of a build with seed s reads corpus stream s + r * stride, far from the build seeds."""

@dataclass(frozen=True)
class LMRecipe:
    """Architecture and pretraining hyperparameters of the shapes-world LM."""

    hidden_size: int = 128
    num_layers: int = 3
    num_heads: int = 4
    intermediate_size: int = 384
    max_position_embeddings: int = 512
    embedding_init_std: float = 0.1
    steps: int = 2000
    batch_size: int = 128
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.3
    weight_decay: float = 0.01
    pool_batches: int = 16  # batches drawn at once and bucketed by length
    standin_noise: float = 0.0  # std of Gaussian noise added to stand-in input embeddings
    standin_mix: float = 0.0  # fraction of stand-ins read as a mixture with random tokens
    # Fast binding needs a look-up-and-copy circuit that some seeds have not formed by the end
    # of `steps`. While the build's own binding check misses its target, train another round
    # (a fresh warmup and cosine at `round_learning_rate`, a fresh corpus stream), at most
    # `binding_rounds` times.
    binding_rounds: int = 2
    round_steps: int = 800
    round_learning_rate: float = 1e-3
    round_warmup_steps: int = 20


def build_model(recipe: LMRecipe, tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_heads,
        max_position_embeddings=recipe.max_position_embeddings,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, recipe.embedding_init_std)
        model.get_output_embeddings().weight.normal_(0.0, recipe.embedding_init_std)
    return model


class DocumentEncoder:
    """Token ids and loss mask of a document, each segment tokenized on its own."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast):
        self.tokenizer = tokenizer
        self._cache: dict[str, list[int]] = {}

    def ids(self, text: str) -> list[int]:
        if text not in self._cache:
            self._cache[text] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self._cache[text]

    def encode(self, document: Document) -> tuple[list[int], list[bool]]:
        ids, loss = [self.tokenizer.bos_token_id], [False]
        for segment in document:
            piece = self.ids(segment.text)
            ids += piece
            loss += [segment.role == TARGET] * len(piece)
        return ids + [self.tokenizer.eos_token_id], loss + [True]

    def batch(self, batch: list[Document]) -> dict[str, torch.Tensor]:
        """Right-padded input_ids (B, T), attention_mask (B, T), labels (B, T)."""
        encoded = [self.encode(document) for document in batch]
        length = max(len(ids) for ids, _ in encoded)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(batch), length), pad, dtype=torch.long)
        labels = torch.full((len(batch), length), -100, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), length), dtype=torch.long)
        for row, (ids, loss) in enumerate(encoded):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
            labels[row, : len(ids)] = torch.where(torch.tensor(loss), torch.tensor(ids), -100)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def length_bucketed(stream: Iterator[Document], encoder: DocumentEncoder, batch_size: int,
                    pool_batches: int, seed: int) -> Iterator[list[Document]]:
    """Batches of documents of similar token length (less padding), in shuffled order."""
    rng = random.Random(seed)
    while True:
        pool = list(itertools.islice(stream, batch_size * pool_batches))
        pool.sort(key=lambda document: len(encoder.encode(document)[0]))
        chunks = [pool[i : i + batch_size] for i in range(0, len(pool), batch_size)]
        rng.shuffle(chunks)
        yield from chunks


def learning_rate(step: int, recipe: LMRecipe) -> float:
    """Linear warmup, then cosine decay to ``min_lr_ratio`` of the peak."""
    if step < recipe.warmup_steps:
        return recipe.learning_rate * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return recipe.learning_rate * (recipe.min_lr_ratio + (1 - recipe.min_lr_ratio) * cosine)


def mixed_standins(embeds: torch.Tensor, is_standin: torch.Tensor, vocabulary: torch.Tensor,
                   fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Replace ``fraction`` of the stand-ins by w e + (1 - w) m: their own embedding e, weight w
    uniform in [0.1, 1], mixed with m, a random peaked mixture of the whole vocabulary (V, D).

    A learned visual prefix starts as such a mixture (a soft-token head over the whole
    vocabulary begins near uniform); an LM that reads an image's stand-in inside the mixture
    gives that head a gradient towards the right tokens from its first step."""
    shape = embeds.shape[:-1]                                               # (B, T)
    chosen = is_standin.squeeze(-1) & (torch.rand(shape, generator=generator) < fraction)
    logits = torch.randn(int(chosen.sum()), vocabulary.shape[0], generator=generator) * 3
    others = logits.softmax(-1) @ vocabulary                                # (M, D)
    weight = 0.1 + 0.9 * torch.rand(int(chosen.sum()), 1, generator=generator)
    embeds = embeds.clone()
    embeds[chosen] = weight * embeds[chosen] + (1 - weight) * others
    return embeds


def pretrain(
    model: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    recipe: LMRecipe,
    seed: int,
    mix: CorpusMix,
    progress: bool = True,
    desc: str = "pretraining",
) -> list[float]:
    """Train ``model`` on corpus ``seed``; returns the loss of every step."""
    encoder = DocumentEncoder(tokenizer)
    standin_ids = torch.tensor(tokenizer.convert_tokens_to_ids(list(STANDIN_TOKENS)))
    generator = torch.Generator().manual_seed(seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.learning_rate,
        betas=(0.9, 0.95),
    )
    batches = length_bucketed(documents(seed, mix), encoder, recipe.batch_size, recipe.pool_batches, seed)
    losses = []
    model.train()
    bar = tqdm(range(recipe.steps), desc=desc, disable=not progress, mininterval=2.0)
    for step in bar:
        batch = encoder.batch(next(batches))
        embeds = model.get_input_embeddings()(batch["input_ids"])  # (B, T, D)
        is_standin = torch.isin(batch["input_ids"], standin_ids).unsqueeze(-1)  # (B, T, 1)
        if recipe.standin_noise > 0:
            noise = torch.randn(embeds.shape, generator=generator) * recipe.standin_noise
            embeds = embeds + noise * is_standin
        if recipe.standin_mix > 0:
            embeds = mixed_standins(embeds, is_standin, model.get_input_embeddings().weight,
                                    recipe.standin_mix, generator)
        out = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=batch["labels"])
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, recipe)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(out.loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")
    model.eval()
    return losses


def own_binding_check(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast) -> dict[str, float]:
    """Fast binding in text on the build's own seed: what decides on another round."""
    return check_model(model, tokenizer, ROUND_CHECK_QUERIES, ROUND_CHECK_SEED, only=BINDING_TASKS)


def binding_rounds(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, recipe: LMRecipe, seed: int,
                   mix: CorpusMix, progress: bool = True) -> tuple[list[float], list[str]]:
    """Check fast binding in text on the build's own seed; while it misses its target, train
    ``recipe.round_steps`` more steps, at most ``recipe.binding_rounds`` times. Returns the
    rounds' losses and one line per check."""
    if recipe.binding_rounds <= 0:
        return [], []
    round_recipe = replace(recipe, steps=recipe.round_steps, learning_rate=recipe.round_learning_rate,
                           warmup_steps=min(recipe.round_warmup_steps, recipe.round_steps))
    reader = copy.deepcopy(tokenizer)     # the check sets padding; the saved tokenizer stays as trained
    losses, lines = [], []
    for done in range(recipe.binding_rounds + 1):
        results = own_binding_check(model, reader)
        scores = ", ".join(f"{name} {value:.2f}" for name, value in results.items())
        lines.append(f"- after {done} binding round(s): {scores} "
                     f"({ROUND_CHECK_QUERIES} queries, seed {ROUND_CHECK_SEED})")
        if not missed_targets(results) or done == recipe.binding_rounds:
            break
        if progress:
            print(f"fast binding below target in the build's own check ({scores}): round {done + 1} "
                  f"of at most {recipe.binding_rounds}, {round_recipe.steps} more steps", flush=True)
        losses += pretrain(model, tokenizer, round_recipe, seed + (done + 1) * ROUND_STREAM_STRIDE, mix,
                           progress, desc=f"binding round {done + 1}")
    return losses, lines


def write_readme(out: Path, command: str, seconds: float, recipe: LMRecipe, model: LlamaForCausalLM,
                 tokenizer: PreTrainedTokenizerFast, threads: int, checked: Sequence[str] = (),
                 rounds: Sequence[str] = ()) -> None:
    params = sum(p.numel() for p in model.parameters())
    lines = [
        "# shapes-lm: the frozen language model of the shapes world",
        "",
        "A small Llama pretrained on the shapes-world text corpus (`frozen/toy/corpus.py`),",
        "in which every image is replaced by 4 stand-in tokens (size, color, position, shape).",
        "",
        f"- parameters: {params:,} (untied input/output embeddings)",
        f"- tokenizer: byte-level BPE, {len(tokenizer)} tokens including 13 stand-ins",
        f"- built by: `{command}`",
        f"- build time: {seconds:.0f} s on {threads} CPU thread(s)",
        "",
        "Recipe:",
        "",
        *[f"- {key}: {value}" for key, value in asdict(recipe).items()],
        "",
    ]
    if rounds:
        lines += ["The build's own fast-binding check, which decides on another round of training:", "",
                  *rounds, ""]
    if checked:
        lines += ["Text-only accuracy, measured at the end of the build (`frozen.toy.check_lm`, greedy, on",
                  "a seed never used to build or tune the LM):", "", *checked, ""]
    write_text(out / "README.md", "\n".join(lines))


def build(out: Path, seed: int = 0, recipe: LMRecipe = LMRecipe(), mix: CorpusMix = CorpusMix(),
          progress: bool = True, init_from: Path | None = None
          ) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast, list[float], list[str]]:
    """Tokenizer + pretraining with ``seed`` (from scratch, or continuing the LM folder
    ``init_from``), then binding rounds while the build's own check misses (``binding_rounds``);
    saves the model folder to ``out``. Returns the model, the tokenizer, every step's loss and
    the binding check's lines."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    tokenizer = train_tokenizer(vocabulary_texts())
    if init_from is None:
        model = build_model(recipe, tokenizer)
    else:
        model = LlamaForCausalLM.from_pretrained(init_from)
        if model.config.vocab_size != len(tokenizer):
            raise ValueError(f"--init-from {init_from}: its vocabulary ({model.config.vocab_size}) "
                             f"is not the shapes-world tokenizer's ({len(tokenizer)})")
    losses = pretrain(model, tokenizer, recipe, seed, mix, progress)
    round_losses, rounds = binding_rounds(model, tokenizer, recipe, seed, mix, progress)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    with replacing_files(out) as tmp:      # the folder's files land once all are written
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return model, tokenizer, losses + round_losses, rounds


def _chance(text: str) -> float:
    """An argparse type: a probability in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a chance in [0, 1]")
    return value


def _count(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="model folder to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=LMRecipe.steps)
    parser.add_argument("--standin-noise", type=float, default=LMRecipe.standin_noise,
                        help="std of Gaussian noise on stand-in input embeddings in pretraining")
    parser.add_argument("--shuffle-standins", type=_chance, nargs="?", const=1.0, default=0.0,
                        metavar="CHANCE",
                        help="write each image's stand-ins in a random order with this chance "
                             "(1 when given alone)")
    parser.add_argument("--standin-mix", type=float, default=LMRecipe.standin_mix,
                        help="fraction of stand-ins read mixed with random tokens in pretraining")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="continue pretraining this shapes-world LM folder instead of a new model")
    parser.add_argument("--learning-rate", type=float, default=LMRecipe.learning_rate)
    parser.add_argument("--warmup-steps", type=int, default=LMRecipe.warmup_steps)
    parser.add_argument("--binding-rounds", type=_count, default=LMRecipe.binding_rounds,
                        help="at most this many extra rounds of training while fast binding misses its "
                             "target in the build's own check (0: no check, no rounds)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--check-queries", type=int, default=100,
                        help="queries per text-only task checked at the end of the build "
                             "(fast binding included; 0 skips the check)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = LMRecipe(steps=args.steps, standin_noise=args.standin_noise, standin_mix=args.standin_mix,
                      learning_rate=args.learning_rate, warmup_steps=min(args.warmup_steps, args.steps),
                      binding_rounds=args.binding_rounds)
    start = time.perf_counter()
    mix = CorpusMix(shuffle_standins=args.shuffle_standins)
    model, tokenizer, _, rounds = build(args.out, args.seed, recipe, mix, init_from=args.init_from)
    seconds = time.perf_counter() - start
    command = "python -m frozen.toy.build_lm " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    checked = []
    if args.check_queries > 0:
        # The check decides whether the build is usable: an LM that cannot bind nonce words (or
        # caption in a style) in text cannot do it for images either.
        results = check_model(model, tokenizer, args.check_queries, DEFAULT_SEED)   # the model just saved
        checked = report(results, args.check_queries, DEFAULT_SEED)
    write_readme(args.out, command, seconds, recipe, model, tokenizer, args.threads, checked, rounds)
    print(f"wrote {args.out} in {seconds:.0f} s", *rounds, *checked, sep="\n")


if __name__ == "__main__":
    main()
