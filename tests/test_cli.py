"""The `frozen` command line: generate, caption and chat on tiny models."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from PIL import Image

from frozen import FrozenModel
from frozen.cli import chat_prompt, main, trim_turns


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tiny_config):
    folder = tmp_path_factory.mktemp("cli") / "model"
    FrozenModel(tiny_config()).save_pretrained(folder)
    return folder


def test_generate_matches_the_api(lm_dirs, capsys):
    lm = lm_dirs("gpt2")
    assert main(["generate", "--lm", lm, "--max-new-tokens", "6", "--json", "def fib(n):"]) == 0
    record = json.loads(capsys.readouterr().out)
    from frozen import FrozenConfig
    model = FrozenModel(FrozenConfig(lm=lm, vision=None))
    assert record == {"prompt": "def fib(n):",
                      "continuations": [model.generate("def fib(n):", max_new_tokens=6)]}


def test_generate_batch_from_file_and_stdin(lm_dirs, tmp_path, capsys, monkeypatch):
    lm = lm_dirs("llama")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hello\nthe quick brown\n")
    assert main(["generate", "--lm", lm, "--file", str(prompts), "--max-new-tokens", "3",
                 "--temperature", "0.7", "--top-p", "0.9", "--top-k", "20", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("hello") and "\nthe quick brown" in out
    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin"))
    assert main(["generate", "--lm", lm, "--max-new-tokens", "3"]) == 0
    assert capsys.readouterr().out.startswith("from stdin")


def test_caption_with_demos(saved_model, tmp_path, capsys):
    paths = []
    for i, color in enumerate([(255, 0, 0), (0, 0, 255)]):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (32, 32), color).save(path)
        paths.append(str(path))
    assert main(["caption", "--model", str(saved_model), paths[1], "--demo", paths[0],
                 "a red square", "--max-new-tokens", "4", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["image"] == paths[1] and isinstance(record["caption"], str)


def test_errors_are_one_clear_line(lm_dirs, tmp_path, capsys):
    assert main(["caption", "--model", str(tmp_path), "x.png"]) == 2
    assert "not a saved FrozenModel folder" in capsys.readouterr().err
    assert main(["generate", "--lm", str(tmp_path / "missing"), "hi"]) == 2
    assert "LM folder not found" in capsys.readouterr().err


def test_chat_feeds_turns_back_and_trims(tiny_model, lm_dirs):
    model = tiny_model(lm=lm_dirs("llama", context=64), vision=None)
    turns = [{"role": "user", "content": "hello there"},
             {"role": "assistant", "content": "hi, how can I help?"},
             {"role": "user", "content": "the quick brown fox"}]
    prompt = chat_prompt(model.tokenizer, turns)
    assert "hello there" in prompt and prompt.endswith("Assistant:")
    kept = trim_turns(model, turns, reserve=20)
    assert kept[-1] == turns[-1] and len(kept) < len(turns)


def test_console_script_runs(lm_dirs):
    result = subprocess.run([sys.executable, "-m", "frozen.cli", "generate", "--lm",
                             lm_dirs("gpt2"), "--max-new-tokens", "2", "hi"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("hi")


def test_generate_on_the_fast_path_matches_the_default(lm_dirs, capsys):
    lm = lm_dirs("gpt2")
    args = ["generate", "--lm", lm, "--max-new-tokens", "6", "--json", "def fib(n):"]
    assert main(args) == 0
    default = json.loads(capsys.readouterr().out)
    assert main(args + ["--static-cache", "--no-compile"]) == 0
    assert json.loads(capsys.readouterr().out) == default
