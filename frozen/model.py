"""FrozenModel: a trainable vision side feeding prefix embeddings to a frozen causal LM.

    images (N, 3, S, S) -> tower -> head -> (N, n, D) prefixes
    prompt ids (B, T) -> LM token embeddings (B, T, D), image slots replaced by the prefixes
    -> frozen LM -> loss on target tokens (training) or new tokens (generation)

The LM never trains: its parameters have requires_grad=False and it stays in eval mode even
when the module is put in train mode. Only the vision side is saved by `save_pretrained`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import FrozenConfig
from .decoding import Decoder
from .generation import decode, generate_ids, stream_text
from .heads import EmbeddingScale, PrefixHead, build_prefix_head
from .images import ImageTransform, load_image
from .lm import absolute_lm_source, embedding_rms, fingerprint, freeze, lm_traits, load_lm
from .processor import Collator, Processor
from .prompts import IGNORE_INDEX, PromptBatch, PromptError
from .sampling import SamplingOptions
from .vision import build_vision_tower, tower_features

log = logging.getLogger("frozen")

CONFIG_FILE = "frozen_config.json"
WEIGHTS_FILE = "model.safetensors"
TRAINABLE_PREFIXES = ("vision.", "prefix_head.")


@dataclasses.dataclass
class FrozenOutput:
    loss: torch.Tensor               # () mean over target tokens; 0 when there are none
    logits: torch.Tensor             # (B, T, V)
    num_target_tokens: torch.Tensor  # () long


class FrozenModel(nn.Module):
    """See the module docstring. Build with a FrozenConfig, or `from_pretrained(folder)`."""

    def __init__(self, config: FrozenConfig):
        super().__init__()
        self.config = config
        self.lm, self.tokenizer = load_lm(config)
        freeze(self.lm)
        self.lm_dim = self.lm.get_input_embeddings().embedding_dim
        self.lm_traits = lm_traits(self.lm, self.tokenizer)     # what differs per LM family
        self.decoder = Decoder(self.lm, self.lm_traits)        # static caches, compiled steps
        self.vision: nn.Module | None = None
        self.prefix_head: PrefixHead | None = None
        self.image_transform: ImageTransform | None = None
        if config.vision is not None:
            tower = build_vision_tower(config)
            self.vision = tower.module
            # Convolutions run about 1.5x faster on CPU (and use tensor cores well on GPU)
            # with channels-last activations; a ViT is unaffected.
            self._channels_last = any(isinstance(m, nn.Conv2d) for m in self.vision.modules())
            if self._channels_last:
                self.vision.to(memory_format=torch.channels_last)
            self.prefix_head = build_prefix_head(config, tower, self.lm, self.tokenizer,
                                                 self.lm_traits.embed_scale)
            rescale = config.prefix_norm and not self.prefix_head.at_lm_scale
            self.prefix_scale = (EmbeddingScale(embedding_rms(self.lm, self.lm_traits.embed_scale))
                                 if rescale else nn.Identity())   # the table is read only if used
            self.image_transform = ImageTransform(tower.image_size, tower.mean, tower.std,
                                                  config.pad_value)
        # Prompts -> model input, for training and inference alike (picklable, no model in it).
        self.processor = Processor(self.tokenizer, config.num_prefix_tokens,
                                   self.lm_traits.special_prefix, self.lm_traits.context_length,
                                   self.image_transform)
        self._check_freezing()

    # ----- parameters ------------------------------------------------------------------------

    @staticmethod
    def is_trainable(name: str) -> bool:
        """The one filter for what trains and what a checkpoint saves: the vision side."""
        return name.startswith(TRAINABLE_PREFIXES)

    def _check_freezing(self) -> None:
        counts = {True: 0, False: 0}
        for name, param in self.named_parameters():
            assert param.requires_grad == self.is_trainable(name), \
                f"parameter {name} has requires_grad={param.requires_grad}"
            counts[param.requires_grad] += param.numel()
        log.info("frozen: %s trainable parameters (vision side), %s frozen (LM)",
                 f"{counts[True]:,}", f"{counts[False]:,}")
        self.num_trainable, self.num_frozen = counts[True], counts[False]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if self.is_trainable(n)]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Vision tower + head weights and buffers (e.g. BatchNorm statistics); never the LM."""
        return {k: v for k, v in self.state_dict().items() if self.is_trainable(k)}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        expected = set(self.trainable_state_dict())
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise ValueError(f"trainable weights do not match this model: missing "
                             f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
        self.load_state_dict(state, strict=False)

    def train(self, mode: bool = True) -> "FrozenModel":
        super().train(mode)
        self.lm.eval()          # dropout etc. of the frozen LM stay off while the vision side trains
        return self

    @property
    def device(self) -> torch.device:
        return self.lm.get_input_embeddings().weight.device

    @property
    def context_length(self) -> int | None:
        return self.lm_traits.context_length

    # ----- batching --------------------------------------------------------------------------

    def collator(self, padding_side: str = "left", eos_after_target: bool = True,
                 max_length: int | None = None) -> Collator:
        """A picklable training collate (see frozen.processor.Collator); max_length defaults
        to the window."""
        return self.processor.collator(padding_side, eos_after_target, max_length)

    def collate(self, samples: Sequence[Any], padding_side: str = "left",
                eos_after_target: bool = True, max_length: int | None = None) -> PromptBatch:
        """Training batch: prompts (lists of str / Target / images) -> padded PromptBatch."""
        return self.collator(padding_side, eos_after_target, max_length)(samples)

    # ----- the forward pass ------------------------------------------------------------------

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) -> prefix embeddings (N, n, D).

        uint8 pixels (what image_transform gives) are normalised here; float pixels are taken
        as already normalised."""
        if self.vision is None:
            raise PromptError("this model has no vision encoder (FrozenConfig.vision is None)")
        if pixel_values.dtype == torch.uint8:
            pixel_values = self.image_transform.normalize(pixel_values)
        if self._channels_last:
            pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)
        features = tower_features(self.vision, pixel_values, self.prefix_head.uses_tokens)
        return self.prefix_scale(self.prefix_head(features))                # (N, n, D)

    def embed(self, batch: PromptBatch) -> torch.Tensor:
        """Token embeddings with every image's slots replaced by its prefix: (B, T, D)."""
        embeds = self.lm.get_input_embeddings()(batch.input_ids)            # (B, T, D)
        if batch.num_images:
            prefix = self.encode_images(batch.pixel_values).to(embeds.dtype)  # (M, n, D)
            if batch.image_index is not None:
                prefix = prefix[batch.image_index]                          # (N, n, D)
            slots = int(batch.image_mask.sum())
            if slots != prefix.shape[0] * prefix.shape[1]:
                raise PromptError(f"batch has {slots} image slots but {prefix.shape[0]} images "
                                  f"x {prefix.shape[1]} prefix tokens")
            embeds = embeds.masked_scatter(batch.image_mask.unsqueeze(-1),
                                           prefix.reshape(-1, self.lm_dim))
        return embeds

    def _lm_kwargs(self, batch: PromptBatch) -> dict:
        kwargs = dict(attention_mask=batch.attention_mask, use_cache=False)
        if self.lm_traits.accepts_positions:
            kwargs["position_ids"] = batch.position_ids
        return kwargs

    def forward(self, batch: PromptBatch) -> FrozenOutput:
        """Loss on target tokens only. With no target tokens the loss is 0 (never NaN)."""
        embeds = self.embed(batch)
        logits = self.lm(inputs_embeds=embeds, **self._lm_kwargs(batch)).logits  # (B, T, V)
        targets = batch.labels[:, 1:]                                        # (B, T-1)
        selected = targets != IGNORE_INDEX
        count = selected.sum()
        # Only the target rows are upcast: a full (B, T, V) float32 copy costs gigabytes at 7B.
        loss_sum = F.cross_entropy(logits[:, :-1][selected].float(), targets[selected],
                                   reduction="sum")
        return FrozenOutput(loss_sum / count.clamp(min=1), logits, count)

    # ----- inference -------------------------------------------------------------------------

    def _batch(self, rows) -> PromptBatch:
        return self.processor.batch(rows).to(self.device)

    @contextmanager
    def _inference(self):
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    def generate(self, prompts: Any, options: SamplingOptions | None = None, *,
                 images: Sequence[Any] | None = None, return_full_text: bool = False,
                 truncation: str = "error", batch_size: int | None = None,
                 **overrides: Any) -> str | list[str] | list[list[str]]:
        """Continue each prompt. Greedy unless temperature > 0 or do_sample=True.

        prompts: a str (returns a str), or a list whose elements are each a str or a list of
            str and PIL images in order (returns a list, one result per prompt). A str may hold
            `<image>` placeholders filled in order from `images` (PIL images or file paths).
        options: how to decode (frozen.SamplingOptions: max_new_tokens, temperature, top_p,
            top_k, stop, num_return_sequences, seed, static_cache, ...); default greedy.
        overrides: SamplingOptions fields for this call, over `options`, e.g.
            `generate(prompts, max_new_tokens=5, temperature=0.7)`.
        return_full_text: return prompt text (images as `<image>`) + continuation.
        truncation: a prompt longer than the context window raises ("error") or keeps only
            its end ("left"). A continuation stops where the window ends.
        batch_size: prompts per forward pass (default: all at once).
        num_return_sequences > 1 gives a list of continuations per prompt.
        """
        options = _sampling_options(options, overrides)
        single = isinstance(prompts, str) or (isinstance(prompts, list) and images is not None)
        prompt_list = [prompts] if single else list(prompts)
        if not prompt_list:
            raise PromptError("no prompts given")
        images = _load_images(images)
        step = batch_size or len(prompt_list)
        results: list[Any] = []
        k = options.num_return_sequences
        with self._inference():
            for start in range(0, len(prompt_list), step):
                rows, texts = self.processor.prompt_rows(prompt_list[start:start + step], images,
                                                         truncation, options.max_new_tokens)
                outputs: list[list[str]] = [[] for _ in rows]
                for indices, budget in self.processor.decode_groups(rows, options.max_new_tokens):
                    batch = self._batch([rows[i] for i in indices])
                    group_options = options.replace(max_new_tokens=budget)
                    new_ids = generate_ids(self.decoder, self.tokenizer, self.embed(batch),
                                           batch.attention_mask, group_options)
                    texts_out = decode(self.tokenizer, new_ids, options.stop)
                    for j, i in enumerate(indices):
                        outputs[i] = texts_out[j * k:(j + 1) * k]
                for text, group in zip(texts, outputs):
                    if return_full_text:
                        group = [text + g for g in group]
                    results.append(group if k > 1 else group[0])
        return results[0] if single else results

    def stream(self, prompt: Any, options: SamplingOptions | None = None, *,
               images: Sequence[Any] | None = None, truncation: str = "error",
               **overrides: Any) -> Iterator[str]:
        """Yield the continuation of one prompt piece by piece (options as for generate)."""
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], list):
            raise PromptError("stream takes one prompt; use generate for a batch")
        options = _sampling_options(options, overrides)
        if options.num_return_sequences != 1 or options.num_beams != 1:
            raise PromptError("stream gives one continuation: num_return_sequences and "
                              "num_beams must be 1")
        images = _load_images(images)
        with self._inference():
            rows, _ = self.processor.prompt_rows([prompt], images, truncation, options.max_new_tokens)
            (_, budget), = self.processor.decode_groups(rows, options.max_new_tokens)
            batch = self._batch(rows)
            embeds = self.embed(batch)
        options = options.replace(max_new_tokens=budget)
        yield from stream_text(self.decoder, self.tokenizer, embeds, batch.attention_mask, options)

    def image_features(self, images: Sequence[Any]) -> torch.Tensor:
        """Pooled tower features (N, F) for images or paths, e.g. for retrieval (RICES)."""
        if self.vision is None:
            raise PromptError("this model has no vision encoder (FrozenConfig.vision is None)")
        pixels = torch.stack([self.processor.image(img) for img in images]).to(self.device)
        pixels = self.image_transform.normalize(pixels)                     # (N, 3, S, S)
        with self._inference():
            return tower_features(self.vision, pixels, tokens=False).float()  # (N, F)

    # ----- saving and loading ----------------------------------------------------------------

    def lm_fingerprint(self) -> str:
        return fingerprint(self.lm, self.tokenizer)

    def save_pretrained(self, folder: str | Path,
                        state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """Write frozen_config.json and the vision side's weights (safetensors); not the LM.

        state_dict: the trainable weights to write instead of this module's own (e.g. gathered
        from FSDP shards).
        """
        from uuid import uuid4

        from safetensors.torch import save_file

        from .atomic import replacing_files

        folder = Path(folder)
        config = self.config.to_dict()
        config["lm"] = absolute_lm_source(config["lm"])    # the folder loads from anywhere
        weights_id = uuid4().hex            # in both files: from_pretrained refuses a mix of saves
        meta = {"config": config, "lm_fingerprint": self.lm_fingerprint(), "format_version": 1,
                "weights_id": weights_id}
        state = state_dict if state_dict is not None else self.trainable_state_dict()
        state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        with replacing_files(folder) as tmp:    # both land only once both are complete
            (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
            save_file(state, str(tmp / WEIGHTS_FILE), metadata={"weights_id": weights_id})
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path, lm: str | None = None, **overrides: Any) -> "FrozenModel":
        """Load a saved vision side onto its LM (or `lm`, another copy of the same LM), in eval mode.

        overrides: FrozenConfig fields to change at load time, e.g. dtype="bfloat16".
        """
        from safetensors import safe_open

        folder = Path(folder)
        config_path = folder / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"{str(folder)!r} is not a saved FrozenModel folder: no "
                                    f"{CONFIG_FILE} (write one with model.save_pretrained)")
        meta = json.loads(config_path.read_text())
        fields = dict(meta["config"])
        fields["vision_pretrained"] = None          # the tower's weights are in this folder
        if lm is not None:
            fields["lm"] = lm
        fields.update(overrides)
        try:
            model = cls(FrozenConfig.from_dict(fields))
        except FileNotFoundError as err:
            if lm is not None:
                raise
            raise FileNotFoundError(
                f"{err}. {str(folder)!r} was trained against the LM recorded in its "
                f"{CONFIG_FILE}; point at a copy of it with FrozenModel.from_pretrained(folder, "
                "lm=PATH), `frozen ... --lm-path PATH` or `python -m eval ... --lm PATH`") from None
        saved, found = meta.get("lm_fingerprint"), model.lm_fingerprint()
        if saved and saved != found:
            raise ValueError(f"LM mismatch: {str(folder)!r} was trained against an LM with "
                             f"fingerprint {saved}, but {fields['lm']!r} has fingerprint {found} "
                             "(a different architecture config or vocabulary)")
        weights = folder / WEIGHTS_FILE
        if model.vision is not None:
            if not weights.is_file():
                raise FileNotFoundError(f"{str(folder)!r} has no {WEIGHTS_FILE}")
            with safe_open(str(weights), "pt") as f:
                state = {name: f.get_tensor(name) for name in f.keys()}
                weights_id = (f.metadata() or {}).get("weights_id")
            if weights_id != meta.get("weights_id"):
                raise ValueError(f"{str(folder)!r}: its {WEIGHTS_FILE} and {CONFIG_FILE} were "
                                 "written by different saves (a save was cut short, or one file "
                                 "was copied from another folder); save the model again")
            model.load_trainable_state_dict(state)
        return model.eval()        # loaded for inference, as transformers does


def _sampling_options(options: SamplingOptions | None, overrides: dict[str, Any]) -> SamplingOptions:
    """`options` (default: greedy) with this call's keyword overrides."""
    if options is None:
        options = SamplingOptions()
    elif not isinstance(options, SamplingOptions):
        raise TypeError(f"options must be a frozen.SamplingOptions, got {type(options).__name__} "
                        f"(pass sampling settings by name, e.g. max_new_tokens=20)")
    return options.replace(**overrides) if overrides else options


def _load_images(images: Sequence[Any] | None) -> list[Any] | None:
    """The `images` argument with file paths opened."""
    if images is None:
        return None
    return [img if not isinstance(img, (str, Path)) else load_image(img) for img in images]
