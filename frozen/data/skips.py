"""Bad samples: the kinds a data stream skips, per-worker counting with rate-limited logs,
and the run-wide tally that the training loop keeps and reports.

Every bad case has exactly one kind (SKIP_KINDS); `decode` decides the kinds of a sample,
`shards` the kinds of a shard. One event is one count: a bad sample, or a bad shard each time
a stream tries to read it (a truncated tar counts once, and the sample it cut is lost with it).

A worker never stops on a bad sample and never sleeps: it counts the sample under its kind,
logs the first of each kind and then at most one summary line per `log_interval` seconds.
Counts leave the worker inside the batches it yields (`SkipCounter.take`), so the main
process sees them whatever the number of workers.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

import torch

log = logging.getLogger("frozen.data")

# What a stream can skip. The order fixes the layout of tally vectors: [good, *SKIP_KINDS].
SKIP_KINDS = (
    "corrupt_image",        # complete image data that does not decode (not an image, damaged)
    "truncated_image",      # JPEG / PNG / WebP data cut short anywhere, header included; empty
    "decompression_bomb",   # more pixels than the decode limit (oversized or a bomb)
    "missing_image",        # no jpg / jpeg / png / webp member
    "missing_caption",      # no txt member
    "empty_caption",        # txt member empty or whitespace only
    "undecodable_caption",  # txt member not valid UTF-8 (skipped, never repaired)
    "truncated_tar",        # shard cut anywhere (in a member, in a header, at a member boundary:
                            # no end-of-archive marker) or not a readable tar
    "unreadable_shard",     # shard cannot be opened (failed pipe, URL or permission)
    "missing_shard",        # local shard file does not exist
    # interleaved documents (frozen.data.documents)
    "bad_document",         # no .json member, or its JSON is not in the MMC4 layout
    "too_few_images",       # fewer usable images than the document rules' min_images
    "too_many_images",      # more images than the document rules' max_images
)
TALLY_SIZE = 1 + len(SKIP_KINDS)
# Tally layout of checkpoints written before the kinds were named in them.
_LEGACY_KINDS = ("corrupt_image", "truncated_image", "decompression_bomb", "missing_image",
                 "missing_caption", "empty_caption", "truncated_tar", "unreadable_shard")


class DataError(RuntimeError):
    """The data cannot feed training (all or most samples bad); the message says why."""


class SampleSkipped(Exception):
    """Raised by sample decoding; `kind` is one of SKIP_KINDS."""

    def __init__(self, kind: str, detail: str = ""):
        assert kind in SKIP_KINDS, kind
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class SkipCounter:
    """Counts good pairs and skipped samples in one worker; logs skips at a limited rate.

    stall_limit: a worker that meets this many skips (or sample-less shards) in a row without
        one good pair raises DataError instead of spinning forever on unusable data.
    """

    def __init__(self, log_interval: float = 60.0, stall_limit: int = 10_000, name: str = "data"):
        self.log_interval = log_interval
        self.stall_limit = stall_limit
        self.name = name
        self.total: Counter[str] = Counter()
        self._pending = torch.zeros(TALLY_SIZE, dtype=torch.long)
        self._logged_kinds: set[str] = set()
        self._last_log = float("-inf")
        self._unlogged = 0
        self._stall = 0

    def good(self) -> None:
        self._pending[0] += 1
        self._stall = 0

    def skip(self, kind: str, where: str, detail: object = "") -> None:
        self.total[kind] += 1
        self._pending[1 + SKIP_KINDS.index(kind)] += 1
        now = time.monotonic()
        if kind not in self._logged_kinds or now - self._last_log >= self.log_interval:
            self._logged_kinds.add(kind)
            self._last_log = now
            more = f" ({self._unlogged} more skips not logged)" if self._unlogged else ""
            log.warning("%s: skipped %s at %s: %s%s; skipped so far here: %s", self.name, kind,
                        where, str(detail)[:200], more, format_counts(self.total))
            self._unlogged = 0
        else:
            self._unlogged += 1
        self.stalled()

    def stalled(self) -> None:
        """Count one event without a good pair; raise once `stall_limit` are in a row."""
        self._stall += 1
        if self._stall >= self.stall_limit:
            raise DataError(f"{self.name}: {self._stall} samples or shards in a row gave no usable "
                            f"image-caption pair (skipped: {format_counts(self.total)}); check the "
                            "shard paths and their contents")

    def take(self) -> torch.Tensor:
        """Counts since the previous call: (TALLY_SIZE,) long, [good, *skips per kind]."""
        out, self._pending = self._pending, torch.zeros(TALLY_SIZE, dtype=torch.long)
        return out


def format_counts(counts: dict[str, int]) -> str:
    items = [f"{k}={v}" for k, v in counts.items() if v]
    return ", ".join(items) if items else "none"


class SkipTally:
    """Run-wide counts (main process): good pairs and skips per kind, summed over workers."""

    def __init__(self):
        self.vector = torch.zeros(TALLY_SIZE, dtype=torch.long)

    def add(self, vector: torch.Tensor) -> None:
        self.vector += vector.detach().to("cpu", torch.long)

    @property
    def good(self) -> int:
        return int(self.vector[0])

    @property
    def skipped(self) -> int:
        return int(self.vector[1:].sum())

    def counts(self) -> dict[str, int]:
        return {kind: int(n) for kind, n in zip(SKIP_KINDS, self.vector[1:].tolist())}

    def check(self, max_bad_fraction: float, min_samples: int) -> None:
        """Raise DataError when, after `min_samples`, more than this fraction was skipped."""
        seen = self.good + self.skipped
        if seen >= min_samples and self.skipped > max_bad_fraction * seen:
            raise DataError(f"{self.skipped} of {seen} samples were bad (more than "
                            f"{max_bad_fraction:.0%}): {format_counts(self.counts())}. Stopping "
                            "rather than training on what is left; check the shards")

    def summary(self) -> str:
        return (f"{self.good} samples used, {self.skipped} samples skipped"
                + (f" ({format_counts(self.counts())})" if self.skipped else ""))

    def state_dict(self) -> dict:
        return {"vector": self.vector.clone(), "kinds": list(SKIP_KINDS)}

    def load_state_dict(self, state: dict) -> None:
        """Counts by kind name, so checkpoints from before a kind was added still load."""
        kinds = state.get("kinds", _LEGACY_KINDS)
        self.vector = torch.zeros(TALLY_SIZE, dtype=torch.long)
        self.vector[0] = state["vector"][0]
        for kind, count in zip(kinds, state["vector"][1:].tolist()):
            if kind in SKIP_KINDS:
                self.vector[1 + SKIP_KINDS.index(kind)] = count
