"""The fast decode path: prefill into a static KV cache, then a compilable one-token step.

    spliced prompt embeddings (B, T, D), left padded, mask (B, T)
      -> prefill: the LM's own forward over the whole prompt into transformers' StaticCache (B, L)
      -> step:    last token (B,) -> LM forward (one position) -> sample -> next token (B,)
                  compiled with torch.compile; cached per (batch, cache length) for the process
      -> every `check_every` tokens the host looks once: all rows done? a stop string seen?

Why a loop of our own instead of transformers' `generate(cache_implementation="static")`:
that loop compiles the model forward but keeps everything around it on the host, and it reads
a device value after every token (its stopping criteria ask "are all rows done?"), so the GPU
idles between tokens; its attention mask grows by one column per token. Here every per-token
tensor has a fixed shape and stays on the device (the mask covers the whole cache from the
start; the causal mask hides what is not yet written), sampling draws its noise from a
`torch.Generator` without a sync (the exponential race: argmax(p / E), E ~ Exp(1), picks token
i with probability p_i), and the host looks at the tokens only every few steps. The model
forward, the cache and the sampling warpers are transformers' own; only the loop is ours.

Greedy output equals transformers' `generate` token for token (tests/test_decoding.py).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable, Iterator, Sequence

import torch
from transformers import StaticCache
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

from .lm import LMTraits
from .sampling import SamplingOptions

log = logging.getLogger("frozen")

CHECK_EVERY = 8          # tokens between host checks (all rows done? stop string?)
MIN_CACHE_LENGTH = 64    # cache lengths are powers of two from here: few distinct compiles


@dataclasses.dataclass(frozen=True)
class Sampler:
    """Logits (B, V) -> next tokens (B,). temperature 0 is greedy. Hashable: it is part of the
    key of a compiled step."""

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0

    @classmethod
    def for_options(cls, options: SamplingOptions) -> "Sampler":
        if not options.sampling:
            return cls()
        return cls(options.sampling_temperature, options.top_k or 0, options.top_p or 1.0)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def __call__(self, logits: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        logits = logits.float()                                      # (B, V)
        if self.greedy:
            return logits.argmax(-1)                                 # (B,)
        logits = logits / self.temperature
        if self.top_k:
            logits = TopKLogitsWarper(self.top_k)(None, logits)
        if self.top_p < 1.0:
            logits = TopPLogitsWarper(self.top_p)(None, logits)
        probs = logits.softmax(-1)                                   # (B, V)
        return (probs / noise).argmax(-1)                            # (B,); noise ~ Exp(1)


@dataclasses.dataclass
class DecodeRequest:
    """One batch to decode and how. Of the options, this loop reads max_new_tokens,
    min_new_tokens, the sampler's fields, seed and compile; stop strings come as `stop_seen`
    and rows are already repeated for num_return_sequences."""

    embeds: torch.Tensor                 # (B, T, D) spliced prompt embeddings, left padded
    mask: torch.Tensor                   # (B, T) 1 for real tokens, 0 for padding
    options: SamplingOptions = SamplingOptions()
    eos_ids: Sequence[int] = ()
    pad_id: int = 0
    stop_seen: Callable[[torch.Tensor], list[bool]] | None = None   # new ids (B, t) -> row done
    check_every: int = CHECK_EVERY

    @property
    def sampler(self) -> Sampler:
        return Sampler.for_options(self.options)


def cache_length(needed: int, window: int | None) -> int:
    """The cache length bucket for `needed` positions: the next power of two (at least
    MIN_CACHE_LENGTH), capped at the LM's window when that still holds them."""
    length = max(MIN_CACHE_LENGTH, 1 << (needed - 1).bit_length())
    return min(length, window) if window and window >= needed else length


class Decoder:
    """The fast decode path for one LM: static caches and compiled steps, kept per
    (batch, cache length, sampler) for the life of the process, so a compile is paid once."""

    def __init__(self, lm, traits: LMTraits, backend: str = "inductor"):
        self.lm = lm
        self.traits = traits            # the forward's arguments, the window, StaticCache support
        self.backend = backend          # torch.compile backend ("aot_eager": traces, no codegen)
        self._caches: dict[tuple[int, int], StaticCache] = {}
        self._steps: dict[tuple, Callable] = {}
        self.compile_seconds: dict[tuple, float] = {}    # first-call time of each compiled step

    # ----- the model calls ----------------------------------------------------------------

    def _forward(self, cache, positions, mask, **inputs) -> torch.Tensor:
        """Logits (B, V) of the last position."""
        kwargs = {self.traits.cache_arg: cache, "attention_mask": mask, "use_cache": True, **inputs}
        if self.traits.accepts_positions:
            kwargs["position_ids"] = positions
        if self.traits.takes_logits_to_keep:
            kwargs["logits_to_keep"] = 1
        return self.lm(**kwargs).logits[:, -1]                       # (B, V)

    def _step(self, cache, sampler: Sampler, token, positions, mask, done, bias, noise, pad_id):
        """One token for every row; rows already done get padding (as transformers does)."""
        logits = self._forward(cache, positions, mask, input_ids=token[:, None])  # (B, V)
        nxt = sampler(logits + bias, noise)                          # (B,)
        return torch.where(done, pad_id, nxt)

    def _compiled_step(self, key: tuple, cache, sampler: Sampler, compile: bool) -> Callable:
        """The one-token step for `key` = (batch, cache length, sampler): compiled once per
        process when `compile`, else the plain eager step. Returns a fresh token tensor (B,)."""
        if not compile:
            return lambda *args: self._step(cache, sampler, *args)
        if key not in self._steps:
            cuda = cache_device(self.lm).type == "cuda"
            # cudagraphs ("reduce-overhead") on CUDA; static shapes, so one graph per key.
            graphs = cuda and self.backend == "inductor"
            compiled = torch.compile(self._step, fullgraph=True, dynamic=False, backend=self.backend,
                                     mode="reduce-overhead" if graphs else None)

            def step(*args):
                if cuda:       # the previous step's outputs were cloned: the graph may reuse them
                    torch.compiler.cudagraph_mark_step_begin()
                return compiled(cache, sampler, *args).clone()

            eager = self._compiled_step(key, cache, sampler, compile=False)
            self._steps[key] = self._timed_first_call(key, step, eager, cuda)
        return self._steps[key]

    def _timed_first_call(self, key: tuple, step: Callable, eager: Callable,
                          cuda: bool) -> Callable:
        """Wrap `step` so its first call (the compile) is timed into compile_seconds[key]; if
        the compile fails, warn once and keep the eager step for this key."""
        failed: list[bool] = []

        def first(*args):
            if failed:
                return eager(*args)
            if key in self.compile_seconds:
                return step(*args)
            start = time.perf_counter()
            try:
                out = step(*args)
            except Exception as err:     # e.g. no C++ compiler for inductor on this machine
                log.warning("frozen: compiling the decode step failed (%s: %s); decoding "
                            "uncompiled", type(err).__name__, str(err).splitlines()[0][:200])
                self._steps[key] = eager
                failed.append(True)
                return eager(*args)
            if cuda:
                torch.cuda.synchronize()
            self.compile_seconds[key] = time.perf_counter() - start
            return out

        return first

    def _cache(self, batch: int, length: int) -> StaticCache:
        key = (batch, length)
        if key not in self._caches:
            self._caches[key] = StaticCache(config=self.lm.config, max_cache_len=length)
        cache = self._caches[key]
        cache.reset()
        return cache

    # ----- the loop -----------------------------------------------------------------------

    def _prefill(self, req: DecodeRequest):
        """Run the prompt into a fresh cache.

        Returns (cache, mask (B, L), next positions (B, 1), last logits (B, V))."""
        batch, prompt_len, _ = req.embeds.shape
        length = cache_length(prompt_len + req.options.max_new_tokens, self.traits.context_length)
        cache = self._cache(batch, length)
        mask = req.mask.new_ones(batch, length)                                 # (B, L)
        mask[:, :prompt_len] = req.mask           # later positions: hidden by the causal mask
        positions = (req.mask.long().cumsum(-1) - 1).clamp(min=0)               # (B, T)
        logits = self._forward(cache, positions, mask, inputs_embeds=req.embeds)
        return cache, mask, positions[:, -1:] + 1, logits

    @torch.no_grad()
    def decode(self, req: DecodeRequest) -> Iterator[torch.Tensor]:
        """Yield new tokens (B, k) on the CPU, k <= check_every at a time, until every row is
        done (EOS or stop string) or max_new_tokens are out; finished rows yield padding."""
        cache, mask, positions, logits = self._prefill(req)
        options, sampler = req.options, req.sampler
        batch, vocab, device = logits.shape[0], logits.shape[-1], logits.device
        eos = torch.tensor(list(req.eos_ids), dtype=torch.long, device=device)
        no_bias = torch.zeros(vocab, dtype=logits.dtype, device=device)        # (V,)
        hold_eos = no_bias.clone().index_fill_(0, eos, float("-inf"))  # min_new_tokens not reached
        noise = NoiseSource(sampler, options.seed, (batch, vocab), device)
        done = torch.zeros(batch, dtype=torch.bool, device=device)             # (B,)
        bias = hold_eos if options.min_new_tokens > 0 else no_bias
        token = sampler(logits + bias, noise())                                # (B,)
        done = done | torch.isin(token, eos)
        key = (batch, mask.shape[1], sampler)
        step = self._compiled_step(key, cache, sampler, self._compiles(options))
        chunk, history = [token], []
        for t in range(1, options.max_new_tokens):
            if len(chunk) == req.check_every:
                history.append(torch.stack(chunk, 1).cpu())                    # (B, k); syncs
                chunk = []
                yield history[-1]
                if self._all_done(history, done, req):
                    return
            bias = hold_eos if t < options.min_new_tokens else no_bias
            token = step(token, positions, mask, done, bias, noise(), req.pad_id)
            positions += 1
            done = done | torch.isin(token, eos)
            chunk.append(token)
        yield torch.stack(chunk, 1).cpu()

    def _compiles(self, options: SamplingOptions) -> bool:
        """Whether to compile the step: options.compile, by default when the LM is on CUDA."""
        return options.compile if options.compile is not None else cache_device(self.lm).type == "cuda"

    @staticmethod
    def _all_done(history: list[torch.Tensor], done: torch.Tensor, req: DecodeRequest) -> bool:
        """The host check: mark rows whose text holds a stop string; True when all are done."""
        if req.stop_seen is not None:
            done |= torch.tensor(req.stop_seen(torch.cat(history, 1)), device=done.device)
        return bool(done.all())


class NoiseSource:
    """Exp(1) noise (B, V) for the exponential race, from a seeded generator when a seed is
    given (the global RNG is then untouched); None when decoding greedily."""

    def __init__(self, sampler: Sampler, seed: int | None, shape: tuple[int, int], device):
        self.shape, self.device, self.active = shape, device, not sampler.greedy
        self.generator = None
        if self.active and seed is not None:
            self.generator = torch.Generator(device).manual_seed(seed)

    def __call__(self) -> torch.Tensor | None:
        if not self.active:
            return None
        u = torch.rand(self.shape, generator=self.generator, device=self.device)
        # Never exactly 0: a zero would turn a filtered-out token's 0 / 0 into NaN, which wins.
        return (-torch.log1p(-u)).clamp_(min=torch.finfo(u.dtype).tiny)       # (B, V)


def cache_device(lm) -> torch.device:
    return lm.get_input_embeddings().weight.device
