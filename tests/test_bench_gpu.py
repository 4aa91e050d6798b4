"""The GPU benchmark's logic, run on the CPU with a tiny model (no figures are checked)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from bench import gpu


def test_gpu_decode_rows_run_on_cpu():
    setup = dataclasses.replace(gpu.DRY_RUN, batches=(2,), lengths=(2, 5), repeats=1,
                                backend="eager")
    with tempfile.TemporaryDirectory() as tmp:
        model = gpu.build_model(Path(tmp), setup)
        rows = gpu.decode_rows(model, setup, bandwidth=1e9)
    names = [row.name for row in rows]
    assert names == ["decode, batch 2, default (tokens/s; bound)",
                     "decode, batch 2, fast (tokens/s; bound)",
                     "fast path, first call's compile (s, worst shape)"]
    assert all(row.candidate > 0 for row in rows)
    assert rows[-1].note == "1 shapes compiled"
