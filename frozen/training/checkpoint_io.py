"""AtomicCheckpointIO: checkpoint files are either complete or absent, never half-written.

Lightning's TorchCheckpointIO writes through an fsspec transaction whose temporary file lives
in the system temp folder; when that is another filesystem than the checkpoint folder (local
/tmp, checkpoints on NFS or Lustre) the final move is a copy, which a kill can cut short.
Here the temporary file sits next to the target, is fsynced, and replaces it with os.replace,
an atomic rename. Remote URLs keep Lightning's own path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        if urlparse(str(path)).scheme not in ("", "file") or storage_options is not None:
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_torch_save(checkpoint, Path(path))


def atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)        # make the rename itself durable
    finally:
        os.close(fd)
