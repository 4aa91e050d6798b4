"""Generation: sampling options -> a decode loop over spliced input embeddings -> text.

Two loops, the same greedy tokens:
- transformers' `generate(inputs_embeds=...)` (the default): KV cache, greedy / sampling /
  beam search, top-k / top-p, per-row EOS, stop strings and streaming, with positions computed
  from the attention mask exactly as for token ids, which keeps text-only output identical to
  the bare LM;
- `static_cache=True`: the fast path of `frozen.decoding` (static KV cache, a one-token step
  compiled on CUDA, no per-token host sync), for what it covers (everything but beam search,
  on LMs that take a StaticCache); the rest falls back to transformers' loop with its own
  static cache.
This file maps our options onto them and cleans up the text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import warnings
from typing import Iterable, Iterator, Sequence

import torch

from .decoding import DecodeRequest, Decoder, Sampler, cache_device


@dataclasses.dataclass
class SamplingOptions:
    """How to decode. temperature 0 (or do_sample=False) is greedy.

    static_cache: decode with our own loop over a fixed-size KV cache (frozen.decoding);
    greedy output equals the default loop's.
    compile: compile that loop's one-token step with torch.compile (default: when the LM is on
    a CUDA device). The first call for each (batch size, cache length) pays the compile.
    """

    max_new_tokens: int = 32
    min_new_tokens: int = 0
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    do_sample: bool | None = None
    num_beams: int = 1
    num_return_sequences: int = 1
    stop: Sequence[str] | None = None
    seed: int | None = None
    static_cache: bool = False
    compile: bool | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if self.num_beams < 1 or self.num_return_sequences < 1:
            raise ValueError("num_beams and num_return_sequences must be >= 1")
        if self.sampling and self.do_sample and self.temperature == 0:
            self.temperature = 1.0
        if not self.sampling and self.num_return_sequences > self.num_beams:
            raise ValueError("num_return_sequences > 1 needs sampling (temperature > 0) or "
                             "num_beams >= num_return_sequences")
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        if self.stop is not None and any(not s for s in self.stop):
            raise ValueError("stop strings must be non-empty")

    @property
    def sampling(self) -> bool:
        return bool(self.do_sample) if self.do_sample is not None else self.temperature > 0

    def generate_kwargs(self, tokenizer) -> dict:
        """Arguments for transformers' generate; every knob explicit, so a model's own
        generation_config defaults (e.g. top_k=50) never leak in."""
        kwargs = dict(max_new_tokens=self.max_new_tokens, num_beams=self.num_beams,
                      num_return_sequences=self.num_return_sequences,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      do_sample=self.sampling)
        if self.min_new_tokens:
            kwargs["min_new_tokens"] = min(self.min_new_tokens, self.max_new_tokens)
        if self.sampling:
            kwargs.update(temperature=self.temperature, top_p=self.top_p or 1.0, top_k=self.top_k or 0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if self.stop:
            kwargs.update(stop_strings=list(self.stop), tokenizer=tokenizer)
        if self.static_cache:
            kwargs["cache_implementation"] = "static"
        return kwargs

    def sampler(self) -> Sampler:
        if not self.sampling:
            return Sampler()
        return Sampler(self.temperature, self.top_k or 0, self.top_p or 1.0)

    def fast_path(self, decoder: Decoder) -> bool:
        """Whether the static-cache loop of frozen.decoding serves these options on its LM."""
        return self.static_cache and self.num_beams == 1 and decoder.traits.static_decoding


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device):
    """Make sampling reproducible for `seed` without disturbing the caller's RNG state."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """Drop everything from the first stop string on."""
    for s in stop or ():
        index = text.find(s)
        if index >= 0:
            text = text[:index]
    return text


def run_generate(lm, tokenizer, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                 options: SamplingOptions, streamer=None) -> torch.Tensor:
    """New token ids (B * num_return_sequences, T_new) from transformers' decode loop."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*generation flags are not valid.*")
        with seeded(options.seed, inputs_embeds.device), torch.no_grad():
            return lm.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                               streamer=streamer, **options.generate_kwargs(tokenizer))


def fast_request(lm, tokenizer, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                 options: SamplingOptions) -> DecodeRequest:
    """The frozen.decoding request for a left-padded batch (B, T, D); rows are repeated
    num_return_sequences times, as transformers does."""
    k = options.num_return_sequences
    stop = list(options.stop or ())

    def stop_seen(new_ids: torch.Tensor) -> list[bool]:
        texts = tokenizer.batch_decode(new_ids, skip_special_tokens=True)
        return [any(s in text for s in stop) for text in texts]

    compile = options.compile if options.compile is not None else cache_device(lm).type == "cuda"
    return DecodeRequest(inputs_embeds.repeat_interleave(k, 0), attention_mask.repeat_interleave(k, 0),
                         options.max_new_tokens, options.sampler(),
                         min(options.min_new_tokens, options.max_new_tokens),
                         [i for i in [tokenizer.eos_token_id] if i is not None],
                         tokenizer.pad_token_id, options.seed,
                         stop_seen if stop else None, compile)


def generate_ids(decoder: Decoder, tokenizer, inputs_embeds: torch.Tensor,
                 attention_mask: torch.Tensor, options: SamplingOptions) -> torch.Tensor:
    """New token ids (B * num_return_sequences, T_new) from whichever loop serves `options`."""
    lm = decoder.lm
    if not options.fast_path(decoder):
        return run_generate(lm, tokenizer, inputs_embeds, attention_mask, options)
    request = fast_request(lm, tokenizer, inputs_embeds, attention_mask, options)
    return torch.cat(list(decoder.decode(request)), 1)


def decode(tokenizer, new_ids: torch.Tensor, stop: Sequence[str] | None) -> list[str]:
    texts = tokenizer.batch_decode(new_ids, skip_special_tokens=True)
    return [cut_at_stop(t, stop) for t in texts]


def stream_text(decoder: Decoder, tokenizer, inputs_embeds, attention_mask,
                options: SamplingOptions) -> Iterator[str]:
    """Yield text pieces as they are generated, stopping before any stop string."""
    if options.fast_path(decoder):
        request = fast_request(decoder.lm, tokenizer, inputs_embeds, attention_mask, options)
        yield from hold_at_stop(_fast_pieces(decoder, tokenizer, request), options.stop)
    else:
        yield from _transformers_stream(decoder.lm, tokenizer, inputs_embeds, attention_mask, options)


def _fast_pieces(decoder: Decoder, tokenizer, request: DecodeRequest) -> Iterator[str]:
    """Text pieces of one row from frozen.decoding's chunks of new tokens."""
    ids: list[int] = []
    shown = ""
    for chunk in decoder.decode(request):
        ids += chunk[0].tolist()
        text = tokenizer.decode(ids, skip_special_tokens=True)
        text = text.rstrip("\ufffd")           # a character still being spelled out in bytes
        if text.startswith(shown) and len(text) > len(shown):
            yield text[len(shown):]
            shown = text
    tail = tokenizer.decode(ids, skip_special_tokens=True)
    if tail.startswith(shown) and len(tail) > len(shown):
        yield tail[len(shown):]


def hold_at_stop(pieces: Iterable[str], stop: Sequence[str] | None) -> Iterator[str]:
    """Pass pieces through, holding back what could be the start of a stop string and ending
    before the first one. Stops consuming `pieces` at the stop string."""
    hold = max((len(s) for s in stop or ()), default=1) - 1
    pending = ""
    for piece in pieces:
        pending += piece
        cut = cut_at_stop(pending, stop)
        if cut != pending:            # a stop string appeared: emit what precedes it and finish
            pending = cut
            break
        ready = len(pending) - hold
        if ready > 0:
            yield pending[:ready]
            pending = pending[ready:]
    if pending:
        yield pending


def _transformers_stream(lm, tokenizer, inputs_embeds, attention_mask,
                         options: SamplingOptions) -> Iterator[str]:
    """transformers' generate in a worker thread, read through its TextIteratorStreamer."""
    from transformers import TextIteratorStreamer

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            run_generate(lm, tokenizer, inputs_embeds, attention_mask, options, streamer)
        except BaseException as err:  # surfaced in the caller's thread below
            errors.append(err)
            streamer.end()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    ended: list[bool] = []

    def pieces() -> Iterator[str]:
        yield from streamer
        ended.append(True)

    yield from hold_at_stop(pieces(), options.stop)
    if not ended:                     # stopped at a stop string: drain, so the worker ends
        for _ in streamer:
            pass
    thread.join()
    if errors:
        raise errors[0]
