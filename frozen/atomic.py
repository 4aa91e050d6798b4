"""Atomic writes: a file, or the files of a folder, appear complete or not at all.

    with replacing(path) as tmp:        # write the new file at `tmp`, a path beside `path`
        tarfile.open(tmp, "w") ...
    write_text(path, text)              # the same for a text file

    with replacing_files(folder) as tmp:    # write the new files into `tmp`, a folder beside
        ...                                 # `folder`; each then replaces its namesake there

The temporary path sits in the target's own folder (so the final step is a rename on one
filesystem, never a copy that a kill can cut short), is named `.{name}.tmp-{pid}` (hidden, and
the same pattern for every writer), is fsynced before os.replace puts it in place, and is
removed when anything fails, KeyboardInterrupt included: the previous file stays as it was.
The standard library has no such helper (tempfile's files live elsewhere or are created with
mode 0600, which the final file would keep), hence these few lines. POSIX only.
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def temporary_path(path: Path) -> Path:
    """Where the new version of `path` is written before it replaces `path`."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block ends without an error, the file
    written there (and closed) replaces `path` in one rename. Missing parent folders are made."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove(tmp)                    # left by an earlier process with this pid
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)             # make the rename itself durable
    finally:
        _remove(tmp)                    # gone already after a successful rename


def write_text(path: str | Path, text: str) -> None:
    """Path.write_text (UTF-8), atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextmanager
def replacing_files(folder: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `folder`; when the block ends without an error,
    the files written there land in `folder`, none of them before all are complete.

    A folder that does not exist yet appears in one rename, with all its files. In an existing
    folder each file replaces its namesake by its own rename and every other file there is left
    alone (a folder may hold the user's own files), so a reader that needs the files to belong
    together must check that they do (FrozenModel records one id in both of its files).
    Only plain files are moved; write no subfolders into the temporary folder.
    """
    folder = Path(folder).resolve()     # a symbolic link keeps pointing at the real folder
    tmp = temporary_path(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)      # left by an earlier process with this pid
        tmp.mkdir()
        yield tmp
        _move_files(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_files(tmp: Path, folder: Path) -> None:
    names = sorted(p.name for p in tmp.iterdir())
    for name in names:
        _fsync(tmp / name)
    if not os.path.lexists(folder):
        _fsync(tmp)
        os.rename(tmp, folder)
    else:
        for name in names:
            os.replace(tmp / name, folder / name)
        _fsync(folder)
    _fsync(folder.parent)


def _fsync(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to disk (any descriptor of it will do)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP):    # folders on some filesystems
            raise
    finally:
        os.close(fd)


def _remove(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass
