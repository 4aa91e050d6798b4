"""AtomicCheckpointIO: checkpoint files are either complete or absent, never half-written, and
a write that fails says in one line which file and why.

Lightning's TorchCheckpointIO writes through an fsspec transaction whose temporary file lives
in the system temp folder; when that is another filesystem than the checkpoint folder (local
/tmp, checkpoints on NFS or Lustre) the final move is a copy, which a kill can cut short.
Here the write goes through frozen.atomic.replacing: the temporary file sits next to the
target, is fsynced, and replaces it with os.replace, an atomic rename. Remote URLs keep
Lightning's own path.

When the disk is full or the folder read-only, torch.save reports only its zip writer's
"unexpected pos"; the operating system's error is caught here on its way through the file
object and raised as CheckpointWriteError, naming the path, the cause and the free space. The
previous file at the path is untouched and the temporary file is removed.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from frozen.atomic import replacing


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the message names the path and what failed."""


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        if urlparse(str(path)).scheme not in ("", "file") or storage_options is not None:
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_torch_save(checkpoint, Path(path))


class _ErrorKeepingFile:
    """A write-only file that keeps the first OSError its writes raised (torch.save's zip
    writer replaces it with its own message)."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def flush(self) -> None:
        self.f.flush()


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save(obj, path) through a temporary file and an atomic rename (see module)."""
    sink = None
    try:
        with replacing(path) as tmp, open(tmp, "wb") as f:
            sink = _ErrorKeepingFile(f)
            torch.save(obj, sink)
    except (OSError, RuntimeError) as err:
        cause = sink.error if sink is not None and sink.error is not None else err
        raise CheckpointWriteError(write_failure(path, cause, obj)) from cause


def write_failure(path: Path, err: BaseException, obj: Any = None) -> str:
    """One line: the path, what failed and, for a full disk, the space needed and free."""
    code = getattr(err, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        free = _free_bytes(path.parent)
        what = (f"{os.strerror(code).lower()}: the checkpoint needs about {_mb(_tensor_bytes(obj))}"
                + (f", {_mb(free)} are free on that filesystem" if free is not None else ""))
    elif code == errno.EROFS:
        what = "the filesystem is read-only"
    elif code in (errno.EACCES, errno.EPERM):
        what = "permission denied"
    else:
        what = f"{type(err).__name__}: {err}".replace("\n", " ")
    return (f"cannot write checkpoint {str(path)!r}: {what}; any earlier file at that path "
            "is unchanged and no temporary file was left")


def _tensor_bytes(obj: Any) -> int:
    """The bytes of the tensors in a (nested) checkpoint dict: nearly all of its size."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
