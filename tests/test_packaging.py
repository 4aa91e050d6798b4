"""Packaging: the wheel holds every package of the tree, and the evaluation harness (the eval/
folder) runs under its installed name `frozen_eval` as well as `eval` in a checkout.

An install is not made here (that needs a build backend and minutes); instead the folder is
imported under the installed name through a link, which fails on any absolute `eval.` import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tree_packages(folder: str, name: str) -> set[str]:
    """Dotted names of `folder` and of every package below it, the top one called `name`."""
    top = ROOT / folder
    return {".".join([name, *init.parent.relative_to(top).parts]) for init in top.rglob("__init__.py")}


def test_the_wheel_lists_every_package_and_maps_frozen_eval_to_the_eval_folder():
    tomllib = pytest.importorskip("tomllib")
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"frozen_eval": "eval"}
    expected = tree_packages("frozen", "frozen") | tree_packages("eval", "frozen_eval")
    listed = set(setuptools["packages"])
    assert listed == expected, (f"[tool.setuptools] packages in pyproject.toml: add "
                                f"{sorted(expected - listed)}, drop {sorted(listed - expected)}")
    assert "frozen_eval.tasks" in listed and not any(p.split(".")[0] == "eval" for p in listed)


def python(code_or_args: list[str], cwd: Path, path: list[Path]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, path)), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *code_or_args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


IMPORT_ALL = """
import importlib, pkgutil, sys
import frozen_eval
from frozen_eval.__main__ import main
for module in pkgutil.walk_packages(frozen_eval.__path__, "frozen_eval."):
    importlib.import_module(module.name)
assert main(["--list-tasks"]) == 0
print("strays:", sorted(n for n in sys.modules if n.split(".")[0] == "eval"))
"""


def test_the_harness_runs_as_frozen_eval_and_as_eval(tmp_path):
    (tmp_path / "frozen_eval").symlink_to(ROOT / "eval", target_is_directory=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    installed = python(["-c", IMPORT_ALL], elsewhere, [tmp_path, ROOT])
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert "strays: []" in installed.stdout       # no module imported itself as `eval.`
    assert "shapes-binding" in installed.stdout and "coco" in installed.stdout

    help_installed = python(["-m", "frozen_eval", "--help"], elsewhere, [tmp_path, ROOT])
    assert help_installed.returncode == 0 and "usage: python -m frozen_eval" in help_installed.stdout
    help_checkout = python(["-m", "eval", "--help"], ROOT, [ROOT])
    assert help_checkout.returncode == 0 and "usage: python -m eval" in help_checkout.stdout


def test_importing_frozen_imports_no_evaluation_training_or_shard_code():
    unwanted = ("eval", "frozen_eval", "lightning", "pytorch_lightning", "webdataset")
    loaded = python(["-c", f"import sys, frozen; print(sorted(n for n in sys.modules "
                           f"if n.split('.')[0] in {unwanted!r}))"], ROOT, [ROOT])
    assert loaded.returncode == 0 and loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr[-2000:]
