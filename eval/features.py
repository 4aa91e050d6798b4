"""Image features of the model under evaluation (for RICES), cached on disk by image key.

The cache file is named after a fingerprint of the model's trainable weights (the vision
side), so a retrained model never reads stale features. Features are stored L2-normalised,
float32, on CPU: dot products are cosine similarities.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .queries import ImageRef


def model_fingerprint(model) -> str:
    """A short hash of the model's trainable weights (what image features depend on)."""
    state = model.trainable_state_dict()
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous().reshape(-1)
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class FeatureCache:
    """`get(refs)` -> (N, F) unit-norm features; computes only what the cache file lacks."""

    def __init__(self, model, directory: Path | None, batch_size: int = 32, progress: bool = True,
                 save_every: int = 4096):
        self.model = model
        self.batch_size = batch_size
        self.progress = progress
        self.save_every = save_every
        self.path = Path(directory) / f"image-features-{model_fingerprint(model)}.pt" if directory else None
        self.keys: list[str] = []
        self.index: dict[str, int] = {}
        self._chunks: list[torch.Tensor] = []                          # each (n, F); rows in key order
        if self.path is not None and self.path.is_file():
            saved = torch.load(self.path, map_location="cpu")
            self.keys = list(saved["keys"])
            self._chunks = [saved["features"]]
            self.index = {key: i for i, key in enumerate(self.keys)}

    @property
    def features(self) -> torch.Tensor:
        """All cached features (N, F)."""
        if len(self._chunks) > 1:
            self._chunks = [torch.cat(self._chunks)]
        return self._chunks[0]

    def get(self, refs: Sequence[ImageRef]) -> torch.Tensor:
        missing = list({ref.key: ref for ref in refs if ref.key not in self.index}.values())
        if missing:
            self._compute(missing)
        rows = torch.tensor([self.index[ref.key] for ref in refs], dtype=torch.long)
        return self.features.index_select(0, rows)                     # (len(refs), F)

    def _compute(self, refs: list[ImageRef]) -> None:
        unsaved = 0
        bar = tqdm(total=len(refs), desc="image features (RICES)", unit="img", disable=not self.progress)
        try:
            for start in range(0, len(refs), self.batch_size):
                batch = refs[start:start + self.batch_size]
                with torch.no_grad():
                    out = self.model.image_features([ref.load() for ref in batch])  # (b, F)
                out = F.normalize(out.detach().float().cpu(), dim=-1)
                self._add([ref.key for ref in batch], out)
                unsaved += len(batch)
                bar.update(len(batch))
                if unsaved >= self.save_every:
                    self._save()
                    unsaved = 0
        finally:
            bar.close()
            if unsaved:
                self._save()

    def _add(self, keys: list[str], features: torch.Tensor) -> None:
        for key in keys:
            self.index[key] = len(self.keys)
            self.keys.append(key)
        self._chunks.append(features)

    def _save(self) -> None:
        if self.path is None:
            return
        from frozen.atomic import replacing     # frozen loads only once something is written

        with replacing(self.path) as tmp:
            torch.save({"keys": self.keys, "features": self.features}, tmp)
