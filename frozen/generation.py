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
This file maps SamplingOptions (frozen.sampling) onto them and cleans up the text.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from typing import Iterable, Iterator, Sequence

import torch

from .decoding import DecodeRequest, Decoder
from .sampling import SamplingOptions


def transformers_kwargs(options: SamplingOptions, tokenizer) -> dict:
    """Arguments for transformers' generate; every knob explicit, so a model's own
    generation_config defaults (e.g. top_k=50) never leak in."""
    kwargs = dict(max_new_tokens=options.max_new_tokens, num_beams=options.num_beams,
                  num_return_sequences=options.num_return_sequences,
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                  do_sample=options.sampling)
    if options.min_new_tokens:
        kwargs["min_new_tokens"] = min(options.min_new_tokens, options.max_new_tokens)
    if options.sampling:
        kwargs.update(temperature=options.sampling_temperature, top_p=options.top_p or 1.0,
                      top_k=options.top_k or 0)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if options.stop:
        kwargs.update(stop_strings=list(options.stop), tokenizer=tokenizer)
    if options.static_cache:
        kwargs["cache_implementation"] = "static"
    return kwargs


def takes_fast_path(options: SamplingOptions, decoder: Decoder) -> bool:
    """Whether the static-cache loop of frozen.decoding serves `options` on the decoder's LM."""
    return options.static_cache and options.num_beams == 1 and decoder.traits.static_decoding


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
                               streamer=streamer, **transformers_kwargs(options, tokenizer))


def fast_request(tokenizer, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                 options: SamplingOptions) -> DecodeRequest:
    """The frozen.decoding request for a left-padded batch (B, T, D); rows are repeated
    num_return_sequences times, as transformers does."""
    k = options.num_return_sequences
    stop = list(options.stop or ())

    def stop_seen(new_ids: torch.Tensor) -> list[bool]:
        texts = tokenizer.batch_decode(new_ids, skip_special_tokens=True)
        return [any(s in text for s in stop) for text in texts]

    return DecodeRequest(inputs_embeds.repeat_interleave(k, 0), attention_mask.repeat_interleave(k, 0),
                         options, [i for i in [tokenizer.eos_token_id] if i is not None],
                         tokenizer.pad_token_id, stop_seen if stop else None)


def generate_ids(decoder: Decoder, tokenizer, inputs_embeds: torch.Tensor,
                 attention_mask: torch.Tensor, options: SamplingOptions) -> torch.Tensor:
    """New token ids (B * num_return_sequences, T_new) from whichever loop serves `options`."""
    lm = decoder.lm
    if not takes_fast_path(options, decoder):
        return run_generate(lm, tokenizer, inputs_embeds, attention_mask, options)
    request = fast_request(tokenizer, inputs_embeds, attention_mask, options)
    return torch.cat(list(decoder.decode(request)), 1)


def decode(tokenizer, new_ids: torch.Tensor, stop: Sequence[str] | None) -> list[str]:
    texts = tokenizer.batch_decode(new_ids, skip_special_tokens=True)
    return [cut_at_stop(t, stop) for t in texts]


def stream_text(decoder: Decoder, tokenizer, inputs_embeds, attention_mask,
                options: SamplingOptions) -> Iterator[str]:
    """Yield text pieces as they are generated, stopping before any stop string."""
    if takes_fast_path(options, decoder):
        request = fast_request(tokenizer, inputs_embeds, attention_mask, options)
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
