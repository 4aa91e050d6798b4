"""Choosing demonstrations from a train split: at random, or RICES (retrieval by image similarity).

RICES (Yang et al. 2022, as used by OpenFlamingo) takes the k train images whose vision
features are closest to the query's by cosine similarity. The demonstrations are ordered
from least to most similar, so the most similar one sits right before the query.
A demonstration never shows the query's own image.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Sequence

import torch

from .errors import EvalError
from .features import FeatureCache
from .queries import Example


class Selector(ABC):
    """Picks k demonstrations from `pool` for each query."""

    name: str

    @abstractmethod
    def select(self, queries: Sequence[Example], pool: Sequence[Example], k: int,
               rng: random.Random) -> list[list[Example]]:
        """One list of k demonstrations per query."""


def _check_pool(pool: Sequence[Example], k: int) -> None:
    if k > len(pool) - 1:
        raise EvalError(f"{k} demonstrations were asked for, but the train split has only "
                        f"{len(pool)} examples (lower the shots or enlarge demo_pool_size)")


class RandomSelector(Selector):
    """k distinct pool examples drawn uniformly for each query."""

    name = "random"

    def select(self, queries, pool, k, rng):
        if k == 0:
            return [[] for _ in queries]
        _check_pool(pool, k)
        chosen = []
        for query in queries:
            picks = [pool[i] for i in rng.sample(range(len(pool)), k + 1)]
            picks = [p for p in picks if p.image.key != query.image.key][:k]
            chosen.append(picks)
        return chosen


class RicesSelector(Selector):
    """The k pool examples nearest to each query in the model's image-feature space."""

    name = "rices"

    def __init__(self, features: FeatureCache, chunk: int = 256):
        self.features = features
        self.chunk = chunk

    def select(self, queries, pool, k, rng):
        if k == 0:
            return [[] for _ in queries]
        _check_pool(pool, k)
        pool_features = self.features.get([p.image for p in pool])        # (P, F), unit norm
        query_features = self.features.get([q.image for q in queries])    # (Q, F), unit norm
        position = {p.image.key: i for i, p in enumerate(pool)}
        chosen: list[list[Example]] = []
        for start in range(0, len(queries), self.chunk):
            block = query_features[start:start + self.chunk]              # (c, F)
            similarity = block @ pool_features.T                           # (c, P)
            for row, query in enumerate(queries[start:start + self.chunk]):
                own = position.get(query.image.key)
                if own is not None:
                    similarity[row, own] = -torch.inf
            nearest = similarity.topk(k, dim=1).indices                    # (c, k), most similar first
            chosen += [[pool[i] for i in reversed(row.tolist())] for row in nearest]
        return chosen


def make_selector(name: str, features: FeatureCache | None) -> Selector:
    if name == "random":
        return RandomSelector()
    if name == "rices":
        if features is None:
            raise EvalError("selection 'rices' needs the model's image features")
        return RicesSelector(features)
    raise EvalError(f"unknown selection {name!r}; expected 'random' or 'rices'")
