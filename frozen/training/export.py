"""Inference folders (FrozenModel.from_pretrained) from a training run or from any checkpoint.

    python -m frozen.training.export runs/toy/checkpoints/last.ckpt runs/toy/inference-last

A checkpoint holds the FrozenConfig and the trainable weights, so exporting one needs the LM's
config and tokenizer (for its fingerprint) but not its weights: the LM is built on the meta
device.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from frozen.config import FrozenConfig
from frozen.model import FrozenModel

STATE_PREFIX = "model."


def save_inference_folder(model: FrozenModel, folder: Path, state: dict | None = None) -> Path:
    """model.save_pretrained(folder); `state` replaces its trainable weights when they had to be
    gathered from shards first (FSDP)."""
    return model.save_pretrained(folder, state_dict=state)


def export_checkpoint(ckpt_path: str | Path, folder: str | Path, lm: str | None = None) -> Path:
    """Write the inference folder of a training checkpoint; `lm` overrides the LM's location."""
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    fields = dict(checkpoint["hyper_parameters"]["frozen"])
    if lm is not None:
        fields["lm"] = lm
    config = FrozenConfig.from_dict(fields)
    model = FrozenModel(dataclasses.replace(config, lm_device="meta", vision_pretrained=None))
    model.config = config                           # what the folder records
    model.load_trainable_state_dict({k[len(STATE_PREFIX):]: v
                                     for k, v in checkpoint["state_dict"].items()})
    return model.save_pretrained(folder)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a .ckpt file written by train.py")
    parser.add_argument("folder", help="where to write the inference folder")
    parser.add_argument("--lm", help="the LM's folder or hub id, if it moved since training")
    args = parser.parse_args(argv)
    print(export_checkpoint(args.checkpoint, args.folder, args.lm))


if __name__ == "__main__":
    main()
