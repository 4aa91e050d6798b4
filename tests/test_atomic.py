"""frozen.atomic: an interrupted write leaves the previous file or folder as it was, and no
temporary file; a finished one replaces it whole."""

from __future__ import annotations

import os
import stat

import pytest

from frozen.atomic import replacing, replacing_files, write_text


class Cut(Exception):
    """Stands for anything that stops a writer midway."""


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("stop", [Cut, KeyboardInterrupt])
def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, stop):
    path = tmp_path / "results.json"
    path.write_text("old")
    with pytest.raises(stop):
        with replacing(path) as tmp:
            tmp.write_text("half of the new")
            raise stop()
    assert path.read_text() == "old"
    assert names(tmp_path) == ["results.json"]


def test_a_finished_write_replaces_the_file_with_ordinary_permissions(tmp_path):
    path = tmp_path / "new" / "folder" / "report.html"      # missing folders are made
    write_text(path, "first")
    write_text(path, "second ✓")
    assert path.read_text(encoding="utf-8") == "second ✓"
    assert names(path.parent) == ["report.html"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask     # not a temp file's 0600


def test_a_new_folder_appears_with_all_its_files_or_not_at_all(tmp_path):
    folder = tmp_path / "model"
    with pytest.raises(Cut):
        with replacing_files(folder) as tmp:
            (tmp / "a.json").write_text("a")
            raise Cut()
    assert names(tmp_path) == []
    with replacing_files(folder) as tmp:
        (tmp / "a.json").write_text("a")
        (tmp / "b.bin").write_bytes(b"b")
    assert names(tmp_path) == ["model"]
    assert names(folder) == ["a.json", "b.bin"]


def test_an_existing_folder_keeps_its_other_files(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.json").write_text("old a")
    (folder / "notes.txt").write_text("the user's")
    with pytest.raises(KeyboardInterrupt):
        with replacing_files(folder) as tmp:
            (tmp / "a.json").write_text("new a")
            raise KeyboardInterrupt()
    assert (folder / "a.json").read_text() == "old a"
    assert names(tmp_path) == ["model"]
    with replacing_files(folder) as tmp:
        (tmp / "a.json").write_text("new a")
        (tmp / "b.bin").write_bytes(b"b")
    assert names(folder) == ["a.json", "b.bin", "notes.txt"]
    assert (folder / "a.json").read_text() == "new a"
    assert (folder / "notes.txt").read_text() == "the user's"


def test_a_linked_folder_is_written_through_the_link(tmp_path):
    real = tmp_path / "disk" / "model"
    real.mkdir(parents=True)
    link = tmp_path / "model"
    link.symlink_to(real)
    with replacing_files(link) as tmp:
        (tmp / "a.json").write_text("a")
    assert link.is_symlink() and names(real) == ["a.json"]
    assert names(tmp_path / "disk") == ["model"]
