"""Train the vision side of a Frozen model on image-caption shards.

    python train.py fit --config configs/toy.yaml
    python train.py fit --config configs/toy.yaml --trainer.max_steps 200 --print_config
    python train.py fit --config configs/toy.yaml --ckpt_path last      # resume

The LightningCLI is frozen.training.cli.FrozenCLI: errors in one line, Ctrl-C saves.
"""

import sys

from frozen.training.cli import FrozenCLI, main, run

__all__ = ["FrozenCLI", "main", "run"]

if __name__ == "__main__":
    sys.exit(run())
