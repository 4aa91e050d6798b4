"""Run many short fits one after another in this process, as one rank of a job whose ranks
were started outside Lightning (RANK, WORLD_SIZE, MASTER_ADDR/PORT set by the test).

    python repeat_fits.py FITS.json OUT_FOLDER

FITS.json is a list of [train.py arguments, repeats]. Each entry's config is parsed once; then
`repeats` fits run, each with a fresh Trainer and so fresh data-loader workers. After each
fit, one line "<entry> <repeat> <global_step>" is appended to OUT_FOLDER/rank<RANK>.txt.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from unittest import mock


def main() -> None:
    from frozen.training import CaptionData, FrozenTraining, trainer_defaults
    from frozen.training.cli import FrozenCLI

    fits = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2]) / f"rank{os.environ['RANK']}.txt"
    for entry, (args, repeats) in enumerate(fits):
        with mock.patch.object(sys, "argv", ["train.py"]):
            cli = FrozenCLI(FrozenTraining, CaptionData, trainer_defaults=trainer_defaults(),
                            seed_everything_default=0, auto_configure_optimizers=False, run=False,
                            save_config_kwargs={"overwrite": True}, args=args)
        for repeat in range(repeats):
            trainer = cli.instantiate_trainer()
            trainer.fit(cli.model, datamodule=cli.datamodule)
            with open(out, "a") as f:
                f.write(f"{entry} {repeat} {trainer.global_step}\n")


if __name__ == "__main__":
    main()
