"""Run many short train.py fits one after another in this process, as one rank of a job whose
ranks were started outside Lightning (RANK, WORLD_SIZE, MASTER_ADDR/PORT set by the test).

    python repeat_fits.py FITS.json OUT_FOLDER

FITS.json is a list of train.py argument lists. After each fit, one line "<index> <global_step>
<seconds>" is appended to OUT_FOLDER/rank<RANK>.txt. Every fit starts fresh data-loader workers.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from train_runs import run_cli


def main() -> None:
    fits = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2]) / f"rank{os.environ['RANK']}.txt"
    for index, args in enumerate(fits):
        start = time.perf_counter()
        cli = run_cli(args)
        with open(out, "a") as f:
            f.write(f"{index} {cli.trainer.global_step} {time.perf_counter() - start:.1f}s\n")


if __name__ == "__main__":
    main()
