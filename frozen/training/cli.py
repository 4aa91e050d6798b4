"""The training command line (`train.py`): LightningCLI over FrozenTraining and CaptionData,
with problems reported the way a user can act on them.

A typo in a YAML key or value, a missing shard folder, `--ckpt_path last` with nothing to
resume, or Ctrl-C before training starts prints one line (`train.py: error: ...`, exit status
2; an interrupt exits 130) instead of jsonargparse's usage text or a traceback. Unknown keys and
values get a did-you-mean from the options the parser knows.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, Sequence

from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from frozen.config import did_you_mean
from frozen.data import DataError

from . import trainer_defaults
from .callbacks import ExportInference, RunCheckpoint
from .datamodule import CaptionData
from .interrupt import InterruptCheckpoint
from .module import FrozenTraining
from .progress import StepProgress
from .quiet import silence_known_messages

PROG = "train.py"


class ConfigError(ValueError):
    """A command line or config that cannot run, explained in one line."""


def parser_keys(parser) -> list[str]:
    """Every dotted option key a (sub)command parser accepts."""
    return [a.dest for a in parser._actions
            if a.dest and a.dest not in ("help", "config") and not a.dest.endswith(".help")]


def explain_argument_error(message: str, keys: Sequence[str]) -> str:
    """jsonargparse's (often multi-line) message -> one line with a did-you-mean."""
    unknown = re.search(r"does not accept option '([^']+)'", message) \
        or re.search(r"unrecognized arguments: --([^\s=]+)", message)
    if unknown:
        key = unknown.group(1)
        return f"unknown option {key!r}{did_you_mean(key, keys)}"
    keyed = re.match(r'Parser key "([^"]+)":\s*(.*)', message, re.S)
    if not keyed:
        return " ".join(message.split())
    key, body = keyed.groups()
    given = re.search(r"Given value: (.*)", body) or re.search(r"Got value: (.*)", body)
    value = given.group(1).strip() if given else None
    choices = [c.strip().strip("'\"") for group in re.findall(r"Literal\[([^\]]*)\]", body)
               for c in group.split(",")]
    if value is not None and choices:
        return f"{key}: {value!r} is not one of {', '.join(dict.fromkeys(choices))}" \
               f"{did_you_mean(value, choices)}"
    first = body.strip().splitlines()[0].strip() if body.strip() else "invalid value"
    return f"{key}: {first}" + (f" (got {value!r})" if value is not None and "Got value" not in first else "")


class FrozenCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(RunCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ExportInference, "export")
        # The data module batches with the model's own processor (tokenizer, window, transform).
        parser.link_arguments("model", "data.processor", apply_on="instantiate",
                              compute_fn=lambda module: module.model.processor)

    def init_parser(self, **kwargs: Any):
        kwargs["exit_on_error"] = False             # errors come to main() as exceptions
        return super().init_parser(**kwargs)

    def parse_arguments(self, parser, args) -> None:
        try:
            super().parse_arguments(parser, args)
        except argparse.ArgumentError as err:
            command = _subcommand(args)
            sub = parser._subcommands_action._name_parser_map.get(command) \
                if command and parser._subcommands_action is not None else None
            raise ConfigError(explain_argument_error(str(err), parser_keys(sub or parser))) from None

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (DataError, ConfigError):
            raise
        except (ValueError, TypeError, OSError) as err:     # the config's values, checked by the classes
            raise ConfigError(" ".join(str(err).split())) from None

    def instantiate_trainer(self, **kwargs: Any):
        """The Trainer, with StepProgress as its progress bar unless another is configured."""
        config = self._get(self.config_init, "trainer", default={})
        callbacks = config.get("callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
        if config.get("enable_progress_bar") is not False \
                and not any(isinstance(c, ProgressBar) for c in callbacks):
            kwargs["callbacks"] = callbacks + [StepProgress()]
        return super().instantiate_trainer(**kwargs)

    def before_fit(self) -> None:
        """Fail before anything is written when there is nothing to resume (missing shards are
        reported by CaptionData.prepare_data, also before anything is written)."""
        if self.config[self.subcommand].get("ckpt_path") == "last":
            checkpoint = self.trainer.checkpoint_callback
            if isinstance(checkpoint, RunCheckpoint) and not checkpoint._find_last_checkpoints(self.trainer):
                raise ConfigError(f"--ckpt_path last: no checkpoint to resume in {checkpoint.dirpath} "
                                  "(to start a new run, leave out --ckpt_path)")


def _subcommand(args: Sequence[str] | None) -> str | None:
    argv = sys.argv[1:] if args is None else list(args)
    return next((a for a in argv if not a.startswith("-")), None)


def main(args: Sequence[str] | None = None, defaults: dict[str, Any] | None = None) -> FrozenCLI:
    """Build the CLI and run its subcommand; errors are raised (see `run` for the script).

    defaults: the Trainer defaults (frozen.training.trainer_defaults() when None)."""
    from transformers.utils import logging as hf_logging

    silence_known_messages()
    hf_logging.disable_progress_bar()       # the frozen LM's "Loading weights" bar
    return FrozenCLI(FrozenTraining, CaptionData, trainer_defaults=defaults or trainer_defaults(),
                     seed_everything_default=0, auto_configure_optimizers=False,
                     save_config_kwargs={"overwrite": True}, args=args)


def run(args: Sequence[str] | None = None) -> int:
    """train.py as a script: `main`, with every problem in one line; returns the exit status."""
    defaults = trainer_defaults()
    interrupt = next(c for c in defaults["callbacks"] if isinstance(c, InterruptCheckpoint))
    try:
        main(args, defaults)
    except (ConfigError, DataError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SIGTERMException) as err:
        what = "terminated" if isinstance(err, SIGTERMException) else "interrupted"
        print(f"\n{PROG}: {what}{_saved(interrupt)}", file=sys.stderr)
        return 130
    except Exception:
        if interrupt.saved_path is None:
            raise
        print(f"{PROG}: interrupted{_saved(interrupt)}", file=sys.stderr)  # workers gone after Ctrl-C
        return 130
    if interrupt.saved_path is not None:
        print(f"{PROG}: interrupted{_saved(interrupt)}", file=sys.stderr)
        return 130
    return 0


def _saved(interrupt: InterruptCheckpoint) -> str:
    if interrupt.saved_path is None:
        return ""
    return (f" at step {interrupt.interrupted_at}; checkpoint {interrupt.saved_path} (resume: "
            "the same command with --ckpt_path last)")
