"""Train the vision side of a Frozen model on image-caption shards.

    python train.py fit --config configs/toy.yaml
    python train.py fit --config configs/toy.yaml --trainer.max_steps 200 --print_config
    python train.py fit --config configs/toy.yaml --ckpt_path last      # resume
"""

from lightning.pytorch.cli import LightningCLI

from frozen.training import (CaptionData, ExportInference, FrozenTraining, RunCheckpoint,
                             trainer_defaults)


class FrozenCLI(LightningCLI):
    def add_arguments_to_parser(self, parser):
        parser.add_lightning_class_args(RunCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ExportInference, "export")


def main(args=None):
    return FrozenCLI(FrozenTraining, CaptionData, trainer_defaults=trainer_defaults(),
                     seed_everything_default=0, auto_configure_optimizers=False,
                     save_config_kwargs={"overwrite": True}, args=args)


if __name__ == "__main__":
    main()
