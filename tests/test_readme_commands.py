"""Every command and Python example in README.md and eval/README.md runs as written after the
quickstart.

The commands are read from the READMEs themselves, so a new or changed command is checked (or
must be listed below with the reason it cannot run here). They run in a scratch folder laid
out like a fresh clone after `python -m frozen.toy.demo`, which the test runs first, shortened
by a few extra arguments (steps, queries, samples) so that every command takes seconds.
Commands that need a hub download, a real data set or a GPU cluster are listed with that
reason; the eval ones among them still run, and must fail only for their missing data.
"""

from __future__ import annotations

import io
import re
import shlex
import sys
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What a command needs that this machine does not have: a hub download, user data, hours.
NOT_HERE = {
    r"^python3 -m venv": "the quickstart's install line (this test runs inside that install)",
    r"frozen\.toy\.build_lm": "rebuilds the shipped LM: about 20 minutes",
    r"^python -m bench": "benchmarks: minutes; run by hand",
    r"--lm gpt2|--lm path/to|meta-llama|llama2-7b|mistral-7b|gptj-6b": "a hub LM or a 7B model",
    r"^sbatch": "a SLURM cluster",
    r"frozen\.data\.resize \"/data/cc3m": "CC3M shards",
    r"frozen\.data\.obelics \"obelics/": "OBELICS parquet files",
}
# Python examples that cannot run here, by a pattern they contain.
PYTHON_NOT_HERE = {r"path/to/": "placeholders for the user's own LM and images (path/to, img1)"}
# Eval commands that need a real data set: they must fail for that data alone (exit 2).
NEEDS_DATA = r"--task coco|configs/eval/coco\.yaml"

# Extra arguments that keep a command short; matched in order, the first match wins.
SHORTER = [
    (r"frozen\.toy\.demo", ["--train-samples", "64", "--eval-queries", "2", "--trainer.max_steps", "2",
                           "--data.batch_size", "2", "--data.num_workers", "0"]),
    (r"train\.py fit --config configs/toy\.yaml --ckpt_path last", ["--trainer.max_steps", "3", "--data.batch_size", "2",
                                                                    "--data.num_workers", "0"]),
    (r"train\.py fit --config configs/toy\.yaml", ["--trainer.max_steps", "2", "--data.batch_size", "2",
                                                   "--data.num_workers", "0"]),
    (r"frozen\.toy\.shards", ["--train", "16", "--val", "8"]),
    (r"frozen\.toy\.documents", ["--docs", "8", "--per-shard", "2"]),
    (r"frozen\.toy\.check_lm", ["--queries", "2"]),
    (r"^python -m eval --config configs/eval/shapes", ["--max-queries", "1", "--trials", "1", "--no-progress"]),
    (r"^python -m eval", ["--no-progress"]),
    (r"frozen (generate|caption)", ["--max-new-tokens", "3"]),
]


def fenced_blocks(text: str, languages: tuple[str, ...]) -> list[str]:
    """The contents of ``` blocks whose language is one of `languages` ("" for none)."""
    blocks, current, language = [], None, None
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current, language = [], line[3:].strip()
            else:
                if language in languages:
                    blocks.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def readme_commands(path: Path) -> list[str]:
    """Shell commands of a README: lines of bash (or unlabelled) ``` blocks and of 4-space-
    indented blocks that start with a command, continuation lines joined, comments dropped."""
    text, commands = path.read_text(), []
    indented = re.findall(r"\n\n((?:    \S.*\n)+)", re.sub(r"```.*?```", "", text, flags=re.S))
    for block in fenced_blocks(text, ("bash", "")) + indented:
        joined = re.sub(r"\\\n\s*", "", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line.strip())
            if re.match(r"(python|python3|frozen|echo|sbatch) ", line):
                commands.append(line)
    return list(dict.fromkeys(commands))


ALL = list({command: (name, command) for name in ("eval/README.md", "README.md")
             for command in readme_commands(ROOT / name)}.values())     # each command once


PYTHON = [(name, block) for name in ("README.md", "eval/README.md")
          for block in fenced_blocks((ROOT / name).read_text(), ("python",))]


def test_the_readmes_have_commands():
    names = {name for name, _ in ALL}
    assert names == {"README.md", "eval/README.md"} and len(ALL) > 15
    assert any(not re.search(p, b) for _, b in PYTHON for p in PYTHON_NOT_HERE), "no runnable example"


def shortened(command: str) -> list[str]:
    extra = next((args for pattern, args in SHORTER if re.search(pattern, command)), [])
    return shlex.split(command) + extra


@pytest.fixture(scope="module")
def after_quickstart(tmp_path_factory):
    """A scratch folder laid out as the repository after `python -m frozen.toy.demo`."""
    folder = tmp_path_factory.mktemp("clone")
    for name in ("configs", "docs", "frozen", "eval", "train.py"):
        (folder / name).symlink_to(ROOT / name)
    with mock.patch.object(sys, "argv", ["python"]):
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(folder)
            from frozen.toy import demo

            demo.main(shortened("python -m frozen.toy.demo")[3:])
    assert (folder / "runs" / "toy" / "inference" / "frozen_config.json").is_file()
    assert (folder / "data" / "shapes" / "train" / "00000.tar").is_file()
    return folder


def run_command(argv: list[str], stdin: str | None, capsys) -> tuple[int, str]:
    """Run one README command in this process (the same entry point the shell would reach)."""
    if argv[:2] == ["python", "-c"]:
        exec(compile(argv[2], "<readme>", "exec"), {})
        return 0, ""
    if argv[0] == "frozen":
        from frozen.cli import main
        with mock.patch.object(sys, "stdin", io.StringIO(stdin or "")):
            code = main(argv[1:])
    elif argv[:2] == ["python", "train.py"]:
        from frozen.training.cli import run
        with mock.patch.object(sys, "argv", ["train.py"]):
            code = run(argv[2:])
    elif argv[:3] == ["python", "-m", "eval"]:
        from eval.__main__ import main
        code = main(argv[3:])
    elif argv[:3] == ["python", "-m", "frozen.toy.shards"]:
        from frozen.toy.shards import main
        code = main(argv[3:]) or 0
    elif argv[:3] == ["python", "-m", "frozen.toy.documents"]:
        from frozen.toy.documents import main
        code = main(argv[3:]) or 0
    elif argv[:3] == ["python", "-m", "frozen.toy.check_lm"]:
        from frozen.toy.check_lm import main
        code = main(argv[3:]) or 0
    elif argv[:3] == ["python", "-m", "frozen.toy.demo"]:
        code = 0                       # the fixture ran it, with these very arguments
    else:
        raise AssertionError(f"no runner for {' '.join(argv)}")
    return code, capsys.readouterr().err


@pytest.mark.parametrize("readme, command", ALL, ids=[f"{n}: {c[:60]}" for n, c in ALL])
def test_command_runs_as_written(readme, command, after_quickstart, capsys, monkeypatch):
    reason = next((why for pattern, why in NOT_HERE.items() if re.search(pattern, command)), None)
    if reason and not re.search(NEEDS_DATA, command):
        pytest.skip(reason)
    monkeypatch.chdir(after_quickstart)
    stdin, pipe, rest = command.partition(" | ")
    argv = shortened(rest if pipe else command)
    stdin = shlex.split(stdin)[1] + "\n" if pipe else None
    code, err = run_command(argv, stdin, capsys)
    if re.search(NEEDS_DATA, command):
        assert code == 2 and "data" in err.lower() and "Traceback" not in err, err
    else:
        assert code == 0, err[-3000:]



@pytest.mark.parametrize("readme, block", PYTHON, ids=[f"{n}: {b.splitlines()[0][:50]}" for n, b in PYTHON])
def test_python_example_runs_as_written(readme, block, after_quickstart, monkeypatch):
    reason = next((why for pattern, why in PYTHON_NOT_HERE.items() if re.search(pattern, block)), None)
    if reason:
        pytest.skip(reason)
    monkeypatch.chdir(after_quickstart)
    exec(compile(block, f"<{readme} example>", "exec"), {"__name__": "__readme__"})
