"""SamplingOptions: how to decode, the one type every caller builds.

`FrozenModel.generate(prompts, options, **overrides)` and `stream` take it; the command line
(`SamplingOptions.from_namespace`) and eval's `decoding:` settings (`SamplingOptions.from_dict`)
build it the same way, so a field is added here once and every caller accepts it. Plain data:
what each decode loop makes of it lives in frozen.generation and frozen.decoding.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from .config import did_you_mean


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
    """How to decode. Greedy unless temperature > 0 or do_sample=True (then temperature 0
    means 1). Every field is checked when the options are built; errors name the field.

    min_new_tokens: EOS is suppressed until this many tokens are generated.
    stop: strings that end a continuation; the text is cut before the first one.
    num_return_sequences: continuations per prompt (needs sampling, or that many beams).
    seed: makes sampling reproducible without touching the global RNG.
    static_cache: decode with our own loop over a fixed-size KV cache (frozen.decoding);
        greedy output equals the default loop's. Beam search falls back to transformers.
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
        _check_int(self, "max_new_tokens", 1)
        _check_int(self, "min_new_tokens", 0)
        _check_number(self, "temperature")
        if self.top_p is not None:
            _check_number(self, "top_p")
            if not 0 < self.top_p <= 1:
                raise ValueError(f"SamplingOptions.top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None:
            _check_int(self, "top_k", 0)
        _check_int(self, "num_beams", 1)
        _check_int(self, "num_return_sequences", 1)
        if self.seed is not None:
            _check_int(self, "seed", None)
        for name in ("do_sample", "static_cache", "compile"):
            _check_flag(self, name, optional=name != "static_cache")
        object.__setattr__(self, "stop", _stop_strings(self.stop))
        if not self.sampling and self.num_return_sequences > self.num_beams:
            raise ValueError(f"SamplingOptions.num_return_sequences={self.num_return_sequences} "
                             f"needs sampling (temperature > 0 or do_sample=True) or num_beams "
                             f">= {self.num_return_sequences}; num_beams is {self.num_beams}")

    @property
    def sampling(self) -> bool:
        """Whether tokens are drawn at random (else greedy or beam search)."""
        return bool(self.do_sample) if self.do_sample is not None else self.temperature > 0

    @property
    def sampling_temperature(self) -> float:
        """The temperature tokens are drawn at when sampling (do_sample=True with 0 means 1)."""
        return self.temperature or 1.0

    # ----- building ---------------------------------------------------------------------------

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def check_names(cls, names: Sequence[str]) -> None:
        """Refuse names that are not fields, suggesting the closest."""
        allowed = cls.field_names()
        unknown = [name for name in names if name not in allowed]
        if unknown:
            raise ValueError(f"unknown sampling option(s): {', '.join(map(repr, unknown))}"
                             f"{did_you_mean(unknown[0], allowed)}; expected one of "
                             f"{', '.join(allowed)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SamplingOptions":
        """Options from a mapping of field names (a config's `decoding:` section)."""
        cls.check_names(list(data))
        return cls(**data)

    @classmethod
    def from_namespace(cls, args: Any) -> "SamplingOptions":
        """Options from an argparse namespace: every attribute named like a field."""
        return cls.from_dict({name: getattr(args, name) for name in cls.field_names()
                              if hasattr(args, name)})

    def replace(self, **overrides: Any) -> "SamplingOptions":
        """A copy with `overrides` (field names) changed, checked like new options."""
        self.check_names(list(overrides))
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _stop_strings(stop: Any) -> tuple[str, ...] | None:
    if stop is None:
        return None
    stop = (stop,) if isinstance(stop, str) else stop
    if not isinstance(stop, Sequence) or not all(isinstance(s, str) and s for s in stop):
        raise ValueError(f"SamplingOptions.stop must be a string or a list of non-empty "
                         f"strings, got {stop!r:.80}")
    return tuple(stop)


def _check_int(options: SamplingOptions, name: str, minimum: int | None) -> None:
    value = getattr(options, name)
    if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"SamplingOptions.{name} must be an integer{bound}, got {value!r:.60}")


def _check_number(options: SamplingOptions, name: str) -> None:
    value = getattr(options, name)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"SamplingOptions.{name} must be a number >= 0, got {value!r:.60}")


def _check_flag(options: SamplingOptions, name: str, optional: bool) -> None:
    value = getattr(options, name)
    if not isinstance(value, bool) and not (optional and value is None):
        allowed = "true, false or None" if optional else "true or false"
        raise ValueError(f"SamplingOptions.{name} must be {allowed}, got {value!r:.60}")
