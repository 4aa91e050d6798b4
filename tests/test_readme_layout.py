"""README.md's Layout section stays true to the tree: every folder it names exists, and every
module and subpackage of frozen/ is named in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout() -> str:
    text = (ROOT / "README.md").read_text()
    return re.search(r"## Layout\s+```\n(.*?)```", text, flags=re.S).group(1)


def test_every_top_level_entry_of_the_layout_exists():
    entries = re.findall(r"^(\S+)", layout(), flags=re.M)
    assert len(entries) >= 6
    for entry in entries:
        assert (ROOT / entry.rstrip("/")).exists(), f"README Layout names {entry}, not in the tree"


def test_every_part_of_the_library_is_named_in_the_layout():
    words = set(re.findall(r"[\w.]+", layout()))
    parts = [p.stem for p in (ROOT / "frozen").glob("*.py") if p.stem != "__init__"]
    parts += [p.name for p in (ROOT / "frozen").iterdir() if (p / "__init__.py").is_file()]
    missing = [part for part in parts if part not in words and f"{part}.py" not in words]
    assert not missing, f"README Layout does not name frozen/{missing}"
