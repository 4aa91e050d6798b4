"""The `frozen` command line: generate, caption and chat on tiny models."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from PIL import Image

from frozen import FrozenModel, SamplingOptions
from frozen.cli import build_parser, chat_prompt, main, sampling_options, trim_turns


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
    prompt = chat_prompt(model, turns)
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


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_jsonl_line_without_prompt_is_one_line(lm_dirs, tmp_path, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "hello"}\n{"text": "no prompt key"}\n')
    assert main(["generate", "--lm", lm_dirs("llama"), "--file", str(prompts)]) == 2
    err = one_line_error(capsys)
    assert f"{prompts}:2" in err and 'no "prompt" string' in err and "'text'" in err
    prompts.write_text('{"prompt": "hello"\n')
    assert main(["generate", "--lm", lm_dirs("llama"), "--file", str(prompts)]) == 2
    assert f"{prompts}:1: not valid JSON" in one_line_error(capsys)


def test_truncation_flag_exists_where_the_error_suggests_it(lm_dirs, capsys):
    lm = lm_dirs("llama", context=32)
    long_prompt = "the quick brown fox " * 20
    assert main(["generate", "--lm", lm, "--max-new-tokens", "3", long_prompt]) == 2
    assert "--truncation left" in one_line_error(capsys)
    assert main(["generate", "--lm", lm, "--max-new-tokens", "3", "--truncation", "left",
                 long_prompt]) == 0
    assert capsys.readouterr().out.startswith(long_prompt)


def test_text_file_as_an_image_names_the_file(saved_model, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    assert main(["caption", "--model", str(saved_model), str(notes)]) == 2
    assert f"cannot read image file '{notes}'" in one_line_error(capsys)


def test_moved_lm_error_names_lm_path(tiny_model, lm_dirs, tmp_path, capsys):
    import shutil

    copy = tmp_path / "lm"
    shutil.copytree(lm_dirs("llama"), copy)
    folder = tiny_model(lm=str(copy)).save_pretrained(tmp_path / "model")
    shutil.rmtree(copy)
    image = tmp_path / "x.png"
    Image.new("RGB", (16, 16)).save(image)
    assert main(["caption", "--model", str(folder), str(image)]) == 2
    assert "--lm-path" in one_line_error(capsys)
    assert main(["caption", "--model", str(folder), "--lm-path", lm_dirs("llama"), str(image),
                 "--max-new-tokens", "2"]) == 0


def test_ctrl_c_is_one_line(monkeypatch, lm_dirs, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("frozen.cli.load_model", interrupted)
    assert main(["chat", "--lm", lm_dirs("llama")]) == 130
    assert one_line_error(capsys) == "frozen chat: interrupted"


@pytest.mark.parametrize("leave", ["/exit\n", "exit\n", ""])     # "" is Ctrl-D at the prompt
def test_chat_leaves_on_exit_and_end_of_input(lm_dirs, monkeypatch, capsys, leave):
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n" + leave + "never sent\n" * bool(leave)))
    sent = []
    import frozen.cli as cli

    real_prompt = cli.chat_prompt
    monkeypatch.setattr(cli, "chat_prompt", lambda model, turns: sent.append(turns[-1]) or real_prompt(model, turns))
    assert main(["chat", "--lm", lm_dirs("llama"), "--max-new-tokens", "2"]) == 0
    assert {t["content"] for t in sent if t["role"] == "user"} == {"hello"}


def test_chat_prints_how_to_leave_on_a_terminal(lm_dirs, monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(""))
    assert main(["chat", "--lm", lm_dirs("llama")]) == 0
    assert "/exit or Ctrl-D to leave" in capsys.readouterr().err


@pytest.mark.parametrize("command, extra, max_new_tokens", [
    ("generate", ["hi"], 64), ("caption", ["photo.png"], 20), ("chat", [], 256)])
def test_sampling_flags_build_sampling_options(command, extra, max_new_tokens):
    parser = build_parser()
    given = ["--temperature", "0.7", "--top-k", "5", "--top-p", "0.9", "--stop", "a", "--stop",
             "b", "--seed", "3", "--min-new-tokens", "2", "--static-cache", "--no-compile"]
    args = parser.parse_args([command, "--lm", "x", *given, *extra])
    assert sampling_options(args) == SamplingOptions(
        max_new_tokens=max_new_tokens, min_new_tokens=2, temperature=0.7, top_k=5, top_p=0.9,
        stop=["a", "b"], seed=3, static_cache=True, compile=False)
    plain = parser.parse_args([command, "--lm", "x", *extra])
    assert sampling_options(plain) == SamplingOptions(max_new_tokens=max_new_tokens)
    assert set(SamplingOptions.field_names()) <= set(vars(plain)), "a sampling option has no flag"
    sampled = parser.parse_args([command, "--lm", "x", "--do-sample", *extra])
    assert sampling_options(sampled).sampling


def test_bad_sampling_flag_is_named_before_the_lm_loads(tmp_path, capsys):
    missing = str(tmp_path / "missing")
    assert main(["generate", "--lm", missing, "--top-p", "1.5", "hi"]) == 2
    err = one_line_error(capsys)
    assert "top_p must be in (0, 1]" in err and "LM folder" not in err
    assert main(["generate", "--lm", missing, "--num-return-sequences", "2", "hi"]) == 2
    assert "num_return_sequences=2 needs sampling" in one_line_error(capsys)
