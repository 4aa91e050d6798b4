"""Command line: ``python -m eval --model DIR --task coco --data PATH --shots 0 4 8 --trials 3``
or ``python -m eval --config configs/eval/coco.yaml [--model DIR] [overrides]``. From a checkout the
package is `eval`; installed (``pip install .``) it is `frozen_eval`: ``python -m frozen_eval ...``.

Command-line values override the config; with a config, --task picks some of its tasks.
Problems with the input are reported in one line (no traceback) with exit status 2.
A run interrupted for any reason resumes when the same command is run again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import EvalError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m {__package__}",
        description="Few-shot evaluation of a Frozen model (captioning, VQA, fast binding, shapes world).")
    p.add_argument("--config", help="YAML run config (see configs/eval/)")
    p.add_argument("--model", help="Frozen model folder (written by save_pretrained)")
    p.add_argument("--lm", help="the frozen LM's folder, if not where the model was trained")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="the LM's dtype at load time")
    p.add_argument("--task", nargs="+", help="task name(s); with --config, which of its tasks to run")
    p.add_argument("--data", nargs="+", metavar="PATH|KEY=PATH",
                   help="data: a folder (or the main file), and/or KEY=PATH for single data keys")
    p.add_argument("--out", help="output folder (results.json, report.html, resumable logs); "
                                 "default: eval/<config or task name> beside the model folder")
    p.add_argument("--shots", nargs="+", type=int, help="shot counts, e.g. 0 4 8 16 32")
    p.add_argument("--trials", type=int, help="trials per shot count (seeds 0..trials-1)")
    p.add_argument("--seeds", nargs="+", type=int, help="explicit trial seeds (sets the number of trials)")
    p.add_argument("--max-queries", type=int, help="queries (episodes) per trial; default: the whole test split")
    p.add_argument("--selection", choices=["random", "rices"], help="how demonstrations are chosen")
    p.add_argument("--zero-shot-text-demos", type=int, metavar="N",
                   help="0-shot = N demonstrations without images (OpenFlamingo uses 2)")
    p.add_argument("--batch-size", type=int, help="queries per generate call")
    p.add_argument("--num-beams", type=int, help="beam search width (1 = greedy)")
    p.add_argument("--max-new-tokens", type=int, help="generation length limit")
    p.add_argument("--blind", action="store_true", default=None, help="blind baseline: every image black")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="default: auto")
    p.add_argument("--cache-dir", help="where RICES image features are cached (default: OUT/cache)")
    p.add_argument("--restart", action="store_true", default=None, help="discard logged predictions")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--list-tasks", action="store_true", help="list the tasks and exit")
    return p


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (None = not given)."""
    values: dict[str, Any] = {
        "model": args.model, "out": args.out, "lm": args.lm, "dtype": args.dtype,
        "shots": args.shots, "trials": args.trials,
        "seeds": args.seeds, "max_queries": args.max_queries, "selection": args.selection,
        "zero_shot_text_demos": args.zero_shot_text_demos, "batch_size": args.batch_size,
        "blind": args.blind, "device": args.device, "cache_dir": args.cache_dir, "restart": args.restart,
    }
    values = {k: v for k, v in values.items() if v is not None}
    if args.no_progress:
        values["progress"] = False
    decoding = {"num_beams": args.num_beams, "max_new_tokens": args.max_new_tokens}
    decoding = {k: v for k, v in decoding.items() if v is not None}
    if decoding:
        values["decoding"] = decoding
    if args.data:
        values["data"] = parse_data(args.data)
    return values


def parse_data(values: Sequence[str]) -> dict[str, str]:
    data: dict[str, str] = {}
    for value in values:
        key, sep, path = value.partition("=")
        if sep and key and "/" not in key:
            data[key] = path
        elif "path" in data:
            raise EvalError(f"--data: give one folder (or main file), then KEY=PATH pairs; got {values}")
        else:
            data["path"] = value
    return data


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        from .run import run, summary
        from .settings import build, load_yaml
        from .tasks import task_class, task_names

        if args.list_tasks:
            for name in task_names():
                print(f"{name:20s} {task_class(name).description}")
            return 0
        config = load_yaml(args.config) if args.config else {}
        name = Path(args.config).stem if args.config else None
        settings = build(config, overrides(args), select=args.task, where=args.config or "command line",
                         name=name)
        results = run(settings)
        print(summary(results))
        print(f"outputs in {settings.out}: results.json, report.html")
        return 0
    except EvalError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished queries are logged: run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
