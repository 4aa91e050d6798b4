"""Generation: sampling options -> transformers' decode loop over spliced input embeddings.

transformers' `generate(inputs_embeds=...)` already gives the KV cache, greedy / sampling /
beam search, top-k / top-p, per-row EOS, stop strings and streaming, and computes positions
from the attention mask exactly as it does for token ids, which is what keeps text-only output
identical to the bare LM. This file only maps our options onto it and cleans up the text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import warnings
from typing import Iterator, Sequence

import torch


@dataclasses.dataclass
class SamplingOptions:
    """How to decode. temperature 0 (or do_sample=False) is greedy.

    static_cache: a fixed-size KV cache allocated once for the whole decode; on a GPU
    transformers then compiles the one-token decode step with torch.compile (the first call
    pays the compile). Output equals the default dynamic cache's.
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


def decode(tokenizer, new_ids: torch.Tensor, stop: Sequence[str] | None) -> list[str]:
    texts = tokenizer.batch_decode(new_ids, skip_special_tokens=True)
    return [cut_at_stop(t, stop) for t in texts]


def stream_text(lm, tokenizer, inputs_embeds, attention_mask, options: SamplingOptions) -> Iterator[str]:
    """Yield text pieces as they are generated, stopping before any stop string."""
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
    hold = max((len(s) for s in options.stop or ()), default=1) - 1
    pending, stopped = "", False
    for piece in streamer:
        pending += piece
        cut = cut_at_stop(pending, options.stop)
        if cut != pending:            # a stop string appeared: emit what precedes it and finish
            pending, stopped = cut, True
            break
        ready = len(pending) - hold
        if ready > 0:
            yield pending[:ready]
            pending = pending[ready:]
    if pending:
        yield pending
    if stopped:
        for _ in streamer:            # drain, so the worker's remaining tokens do not block it
            pass
    thread.join()
    if errors:
        raise errors[0]
