"""Run every benchmark and print one table of side-by-side ratios.

    python -m bench              # the CPU set (a few minutes on 2 cores)
    python -m bench --gpu        # the GPU set, where CUDA is present
    python -m bench --gpu --dry-run   # the GPU set's code on the CPU with a tiny model
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from . import common


CPU_SETS = ("generation", "eval", "train", "data", "threads")


def cpu_rows(args, tmp: Path) -> list[common.Row]:
    from frozen import FrozenConfig, FrozenModel

    from . import data_pipeline, documents, eval_batching, generation, threads, train_step

    lm_dir = common.bench_lm_dir(tmp)
    wanted = set(args.only or CPU_SETS)
    rows: list[common.Row] = []
    text_model = FrozenModel(FrozenConfig(lm=lm_dir, vision=None))
    if "generation" in wanted:
        rows += generation.run(text_model, args.repeats)
    if "eval" in wanted:
        image_model = FrozenModel(train_step.toy_frozen_config(lm_dir)).eval()
        rows += eval_batching.run(image_model, max(2, args.repeats // 2))
    if "train" in wanted:
        rows += train_step.run(lm_dir, args.repeats)
    if "data" in wanted:
        rows += data_pipeline.run(tmp, args.repeats, text_model)
        rows += documents.run(tmp, args.repeats, text_model)
    if "threads" in wanted:
        rows += threads.run(tmp)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per figure (median)")
    parser.add_argument("--gpu", action="store_true", help="run the GPU set (needs CUDA)")
    parser.add_argument("--only", nargs="+", choices=CPU_SETS, default=None,
                        help="run only these parts of the CPU set (default: all)")
    parser.add_argument("--dry-run", action="store_true",
                        help="with --gpu: run the GPU set's code on the CPU with a tiny model "
                             "(checks the logic; the figures mean nothing)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default 1 for the CPU set: tiny models gain "
                             "nothing from more, and a busy 2-core machine makes threaded "
                             "timings erratic; torch's default for the GPU set)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.threads or not args.gpu:
        torch.set_num_threads(args.threads or 1)
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        if args.gpu:
            from . import gpu

            rows = gpu.run(args)
        else:
            rows = cpu_rows(args, Path(tmp))
    kind = ("GPU set, dry run on the CPU" if args.dry_run else "GPU") if args.gpu else "CPU"
    print(f"\nfrozen benchmarks ({kind}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}; ratio = candidate time / baseline time unless noted)")
    common.print_table(rows)
    print(f"\n{time.time() - start:.0f} s in all")


if __name__ == "__main__":
    main()
