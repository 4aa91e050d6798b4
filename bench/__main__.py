"""Run every benchmark and print one table of side-by-side ratios.

    python -m bench              # the CPU set (a few minutes on 2 cores)
    python -m bench --gpu        # the GPU set, where CUDA is present
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from . import common


def cpu_rows(args, tmp: Path) -> list[common.Row]:
    from frozen import FrozenConfig, FrozenModel

    from . import data_pipeline, eval_batching, generation, threads, train_step

    lm_dir = common.bench_lm_dir(tmp)
    rows: list[common.Row] = []
    text_model = FrozenModel(FrozenConfig(lm=lm_dir, vision=None))
    rows += generation.run(text_model, args.repeats)
    image_model = FrozenModel(train_step.toy_frozen_config(lm_dir)).eval()
    rows += eval_batching.run(image_model, max(2, args.repeats // 2))
    rows += train_step.run(lm_dir, args.repeats)
    rows += data_pipeline.run(tmp, args.repeats, text_model)
    rows += threads.run(tmp)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per figure (median)")
    parser.add_argument("--gpu", action="store_true", help="run the GPU set (needs CUDA)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: tiny models gain nothing from more, and "
                             "a busy 2-core machine makes threaded timings erratic)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        if args.gpu:
            from . import gpu

            rows = gpu.run(args)
        else:
            rows = cpu_rows(args, Path(tmp))
    print(f"\nfrozen benchmarks ({'GPU' if args.gpu else 'CPU'}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}; ratio = candidate time / baseline time unless noted)")
    common.print_table(rows)
    print(f"\n{time.time() - start:.0f} s in all")


if __name__ == "__main__":
    main()
