"""The `frozen` command line: generate (text), caption (images, few-shot), chat (multi-turn).

    frozen generate --lm gpt2 "Q: What is the capital of France? A:"
    frozen caption --model out/model photo.jpg --demo dog.jpg "A photo of a dog."
    frozen chat --lm path/to/chat-model
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Sequence

from .images import ImageError, load_image
from .prompts import PromptError
from .sampling import SamplingOptions


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a folder written by FrozenModel.save_pretrained")
    source.add_argument("--lm", help="a bare language model (folder or hub id), text only")
    parser.add_argument("--lm-path", help="with --model: another copy of the same LM")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")


def _add_sampling_args(parser: argparse.ArgumentParser, max_new_tokens: int = 64) -> None:
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    parser.add_argument("--min-new-tokens", type=int, default=0, help="no EOS before this many")
    parser.add_argument("--do-sample", action="store_const", const=True, default=None,
                        help="sample (at temperature 1 unless --temperature is given)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--num-beams", type=int, default=1)
    parser.add_argument("--num-return-sequences", type=int, default=1)
    parser.add_argument("--stop", action="append", default=None, help="stop string (repeatable)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--static-cache", action="store_true",
                        help="the fast decode loop: a fixed-size KV cache and, on a GPU, a "
                             "compiled one-token step; the first call for each batch size and "
                             "cache-length bucket pays the compile (tens of seconds for a 7B "
                             "model), later calls in the process reuse it")
    parser.add_argument("--no-compile", dest="compile", action="store_const", const=False,
                        default=None,
                        help="with --static-cache: run the step uncompiled (no first-call cost)")
    parser.add_argument("--truncation", choices=["error", "left"], default="error",
                        help="a prompt longer than the context window: error, or keep its end")


def sampling_options(args: argparse.Namespace, **overrides: Any) -> SamplingOptions:
    """The sampling flags (argparse dests named like SamplingOptions fields) as options."""
    return SamplingOptions.from_namespace(args).replace(**overrides)


def load_model(args: argparse.Namespace):
    from .config import FrozenConfig
    from .model import FrozenModel
    from .threads import set_cpu_threads

    if not args.verbose:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()          # no "Loading weights" bar before the output
    overrides = {"dtype": args.dtype} if args.dtype else {}
    if args.device == "cpu":
        set_cpu_threads()
    if args.model:
        model = FrozenModel.from_pretrained(args.model, lm=args.lm_path, **overrides)
    else:
        model = FrozenModel(FrozenConfig(lm=args.lm, vision=None, **overrides))
    return model.to(args.device)


def _read_prompts(args: argparse.Namespace) -> list[str]:
    if args.file:
        with open(args.file, encoding="utf-8") as handle:
            lines = [line.rstrip("\n") for line in handle]
        if args.file.endswith(".jsonl"):
            return [_jsonl_prompt(line, f"{args.file}:{number}")
                    for number, line in enumerate(lines, 1) if line.strip()]
        return [line.replace("\\n", "\n") for line in lines if line.strip()]
    if args.prompt is not None:
        return [args.prompt]
    if sys.stdin.isatty():
        raise PromptError("no prompt: pass one as an argument, with --file, or on stdin")
    return [sys.stdin.read()]


def _jsonl_prompt(line: str, where: str) -> str:
    """A .jsonl line: {"prompt": "..."} or a JSON string."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        raise PromptError(f"{where}: not valid JSON ({err.msg})") from None
    if isinstance(value, dict):
        if not isinstance(value.get("prompt"), str):
            raise PromptError(f"{where}: no \"prompt\" string in this line (keys: "
                              f"{', '.join(map(repr, value)) or 'none'})")
        return value["prompt"]
    if not isinstance(value, str):
        raise PromptError(f"{where}: expected {{\"prompt\": \"...\"}} or a JSON string, got "
                          f"{type(value).__name__}")
    return value


def cmd_generate(args: argparse.Namespace) -> None:
    options = sampling_options(args)
    prompts = _read_prompts(args)
    if args.stream and len(prompts) != 1:
        raise PromptError("--stream takes a single prompt")
    model = load_model(args)
    if args.stream:
        print(prompts[0], end="", flush=True)
        for piece in model.stream(prompts[0], options, truncation=args.truncation):
            print(piece, end="", flush=True)
        print()
        return
    outputs = model.generate(prompts, options, truncation=args.truncation, batch_size=args.batch_size)
    for prompt, output in zip(prompts, outputs):
        continuations = output if isinstance(output, list) else [output]
        if args.json:
            print(json.dumps({"prompt": prompt, "continuations": continuations}))
            continue
        for text in continuations:
            # On a terminal the continuation is shown in bold after the prompt.
            print(f"{prompt}\033[1m{text}\033[0m" if sys.stdout.isatty() else prompt + text)
            print("-" * 40)


def cmd_caption(args: argparse.Namespace) -> None:
    stop = args.stop if args.stop is not None else ([args.sep] if args.sep else None)
    options = sampling_options(args, stop=stop)
    demos: list[Any] = []
    for path, caption in args.demo or []:
        demos += [load_image(path), args.prefix + caption + args.sep]
    model = load_model(args)
    if model.vision is None:
        raise PromptError("captioning needs a model with a vision encoder: use --model")
    prompts = [demos + [load_image(path)] + ([args.prefix] if args.prefix else [])
               for path in args.images]
    captions = model.generate(prompts, options, truncation=args.truncation)
    for path, caption in zip(args.images, captions):
        print(json.dumps({"image": path, "caption": caption}) if args.json else f"{path}\t{caption}")


def chat_prompt(model, turns: list[dict[str, str]]) -> str:
    """Render turns with the LM's chat template, or a plain User/Assistant format."""
    traits = model.lm_traits
    if traits.chat_template:
        text = model.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        bos = traits.special_prefix_text       # the prompt's special prefix (BOS) comes from us
        return text[len(bos):] if bos and text.startswith(bos) else text
    lines = [f"{t['role'].capitalize()}: {t['content']}" for t in turns]
    return "\n".join(lines) + "\nAssistant:"


def trim_turns(model, turns: list[dict[str, str]], reserve: int) -> list[dict[str, str]]:
    """Drop the oldest non-system turns until the prompt plus `reserve` tokens fits the window."""
    window = model.context_length
    kept = list(turns)
    while window is not None:
        length = len(model.tokenizer(chat_prompt(model, kept))["input_ids"])
        if length + reserve <= window:
            break
        removable = [i for i, t in enumerate(kept[:-1]) if t["role"] != "system"]
        if not removable:
            raise PromptError(f"the last message alone ({length} tokens) does not fit the "
                              f"context window of {window} with {reserve} tokens to answer")
        del kept[removable[0]]
    return kept


LEAVE_WORDS = ("/exit", "/quit", "exit", "quit")


def cmd_chat(args: argparse.Namespace) -> None:
    options = sampling_options(args)
    model = load_model(args)
    turns: list[dict[str, str]] = [{"role": "system", "content": args.system}] if args.system else []
    stop = args.stop or ([] if model.lm_traits.chat_template else ["\nUser:"])
    options = options.replace(stop=stop or None)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"chatting with {args.model or args.lm}; /exit or Ctrl-D to leave", file=sys.stderr)
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:                                  # Ctrl-D / end of input
            break
        message = line.strip()
        if not message:
            continue
        if message.lower() in LEAVE_WORDS:
            break
        turns.append({"role": "user", "content": message})
        turns = trim_turns(model, turns, args.max_new_tokens)
        prompt = chat_prompt(model, turns)
        if interactive:
            print("model> ", end="", flush=True)
        pieces = model.stream(prompt, options, truncation=args.truncation)
        reply = "".join(piece for piece in _echo(pieces))
        print()
        turns.append({"role": "assistant", "content": reply.strip()})


def _echo(pieces):
    for piece in pieces:
        print(piece, end="", flush=True)
        yield piece


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frozen", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="continue text prompts")
    _add_model_args(gen)
    _add_sampling_args(gen)
    gen.add_argument("prompt", nargs="?", help="the prompt (default: read stdin)")
    gen.add_argument("--file", help="prompts, one per line (\\n for newlines), or .jsonl")
    gen.add_argument("--batch-size", type=int, default=None)
    gen.add_argument("--stream", action="store_true", help="print tokens as they come")
    gen.add_argument("--json", action="store_true", help="one JSON object per prompt")
    gen.set_defaults(run=cmd_generate)

    cap = sub.add_parser("caption", help="caption images, optionally after few-shot demos")
    _add_model_args(cap)
    _add_sampling_args(cap, max_new_tokens=20)
    cap.add_argument("images", nargs="+", help="image files to caption")
    cap.add_argument("--prefix", default="", help="text after each image, e.g. 'A photo of'")
    cap.add_argument("--demo", nargs=2, action="append", metavar=("IMAGE", "CAPTION"),
                     help="a demonstration image and its caption (repeatable)")
    cap.add_argument("--sep", default="\n", help="text after each demo caption (default newline)")
    cap.add_argument("--json", action="store_true")
    cap.set_defaults(run=cmd_caption)

    chat = sub.add_parser("chat", help="multi-turn chat; earlier turns are fed back in")
    _add_model_args(chat)
    _add_sampling_args(chat, max_new_tokens=256)
    chat.add_argument("--system", default=None, help="a system message")
    chat.set_defaults(run=cmd_chat)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        args.run(args)
    except (PromptError, ImageError, OSError, ValueError) as err:
        print(f"frozen {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nfrozen {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
