"""Soft-token prefix head: each prefix vector is a learned mixture of the LM's own token
embeddings, optionally of listed tokens only, sharpened over training towards real tokens."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import OPTIONS_FIELD, HeadContext, LMEmbeddings, PrefixHead


class VocabularyPrefixHead(PrefixHead):
    """Soft tokens: pooled feature (N, F) -> n mixtures of the LM's own token embeddings (N, n, D).

    Each prefix vector is softmax(s cos(q, E)) E, with q from one linear map, E the frozen
    input-embedding matrix (V, D) of the LM and s a learned sharpness. Prefixes therefore stay
    inside the space of embeddings the LM was trained on, and a confident image becomes
    (nearly) a sequence of real tokens, which the LM reads the same way in every context it
    has seen in text; an unconstrained linear prefix can instead fit the captioning loss with
    vectors that only work in the contexts seen in training. E is read from the LM at each
    call (LMEmbeddings), never stored, so the LM's weights are neither copied nor trained.

    Options:
    vocabulary: the tokens the mixtures are drawn from (e.g. an LM's dedicated image tokens):
        one list shared by every prefix slot, or one list per slot (n lists), so that slot i
        only ever becomes one of its own tokens; None draws from the whole vocabulary.
    anneal: training multiplies the softmax sharpness by anneal ** (step / total steps), so
        the mixtures end as (nearly) real tokens; 1 turns it off.
    hard: at inference each slot is exactly its highest-weight token (a real token, which the
        LM has read in every context of its text) instead of the mixture.
    hard_from: training uses those hard tokens too, with the mixture's gradient
        (straight-through), from this fraction of the run on; 1 never does.
    """

    name = "vocabulary"
    at_lm_scale = True
    option_defaults = {"vocabulary": None, "anneal": 1.0, "hard": False, "hard_from": 1.0}
    initial_sharpness = 10.0

    def __init__(self, feature_dim: int, lm_dim: int, num_tokens: int, embeddings: LMEmbeddings,
                 token_ids: torch.Tensor | None = None, slot_mask: torch.Tensor | None = None,
                 anneal: float = 1.0, hard: bool = False, hard_from: float = 1.0):
        super().__init__()
        self.num_tokens, self.lm_dim, self.anneal = num_tokens, lm_dim, float(anneal)
        self.hard, self.hard_from, self.progress = bool(hard), float(hard_from), 0.0
        self.embeddings = embeddings
        self.query = nn.Linear(feature_dim, num_tokens * lm_dim)
        self.log_sharpness = nn.Parameter(torch.tensor(math.log(self.initial_sharpness)))
        # Annealing multiplier of the sharpness, set by training (saved, so inference uses
        # the value training ended with).
        self.register_buffer("sharpness_scale", torch.tensor(1.0))
        # Buffers, so they move with the head instead of being copied at every call.
        self.register_buffer("token_ids", token_ids, persistent=False)      # (V',) or None
        self.register_buffer("slot_mask", slot_mask, persistent=False)      # (n, V') or None

    @classmethod
    def check_options(cls, options: dict[str, Any], num_tokens: int) -> dict[str, Any]:
        options = super().check_options(options, num_tokens)
        if options.get("vocabulary") is not None:
            options["vocabulary"] = _checked_vocabulary(options["vocabulary"], num_tokens)
        if float(options.get("anneal", 1.0)) < 1:
            raise ValueError(f"{OPTIONS_FIELD}['anneal'] must be >= 1, got {options['anneal']}")
        if not isinstance(options.get("hard", False), bool):
            raise ValueError(f"{OPTIONS_FIELD}['hard'] must be true or false, got {options['hard']!r}")
        if not 0 <= float(options.get("hard_from", 1.0)) <= 1:
            raise ValueError(f"{OPTIONS_FIELD}['hard_from'] must be in [0, 1], got "
                             f"{options['hard_from']}")
        return options

    @classmethod
    def build(cls, context: HeadContext, options: dict[str, Any]) -> "VocabularyPrefixHead":
        ids, mask = (None, None) if options["vocabulary"] is None \
            else _vocabulary_ids(options["vocabulary"], context.tokenizer)
        return cls(context.feature_dim, context.lm_dim, context.num_tokens, context.embeddings,
                   ids, mask, options["anneal"], options["hard"], options["hard_from"])

    def on_train_progress(self, progress: float) -> None:
        """Sharpness x anneal ** progress: soft mixtures early for the search, (nearly) real
        tokens by the end; hard tokens from `hard_from` on."""
        self.progress = min(max(progress, 0.0), 1.0)
        if self.anneal != 1:
            self.sharpness_scale.fill_(self.anneal ** self.progress)

    def _uses_hard_tokens(self) -> bool:
        """In training from `hard_from` of the run on; at inference when `hard`."""
        if self.training:
            return self.hard_from < 1 and self.progress >= self.hard_from
        return self.hard

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        # pooled (N, F); the table (V, D) stays in the LM's dtype (matmuls stay in it: no fp32
        # copy of a large vocabulary per step); the softmax is taken in float32.
        embeddings = self.embeddings.weight                                 # (V, D), frozen
        if self.token_ids is not None:
            embeddings = embeddings[self.token_ids]                         # (V', D)
        query = F.normalize(self.query(pooled).view(-1, self.num_tokens, self.lm_dim), dim=-1)
        keys = F.normalize(embeddings, dim=-1)                              # (V, D)
        cosine = query.to(embeddings.dtype) @ keys.T                        # (N, n, V)
        sharpness = self.log_sharpness.exp() * self.sharpness_scale
        logits = cosine.float() * sharpness                                 # (N, n, V)
        if self.slot_mask is not None:             # slot i may mix only its own tokens
            logits = logits.masked_fill(~self.slot_mask, float("-inf"))
        weights = logits.softmax(-1)                                        # (N, n, V)
        if self._uses_hard_tokens():
            one_hot = F.one_hot(weights.argmax(-1), weights.shape[-1]).to(weights.dtype)
            weights = one_hot + weights - weights.detach()  # the token; the mixture's gradient
        mixture = (weights.to(embeddings.dtype) @ embeddings).float()       # (N, n, D)
        return mixture * self.embeddings.scale if self.embeddings.scale != 1 else mixture


def _checked_vocabulary(vocabulary: Any, num_tokens: int) -> list[str] | list[list[str]]:
    """A flat list of >= 2 tokens, or num_tokens such lists (one per slot)."""
    def token_list(tokens: Any, what: str) -> list[str]:
        if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)) or len(tokens) < 2 \
                or not all(isinstance(t, str) for t in tokens):
            raise ValueError(f"{OPTIONS_FIELD}['vocabulary']{what} must be a list of at least "
                             f"2 tokens, got {tokens!r}")
        return list(tokens)

    if isinstance(vocabulary, (list, tuple)) and vocabulary \
            and all(isinstance(v, (list, tuple)) for v in vocabulary):
        if len(vocabulary) != int(num_tokens):
            raise ValueError(f"{OPTIONS_FIELD}['vocabulary'] has {len(vocabulary)} per-slot "
                             f"lists but num_prefix_tokens is {num_tokens}: give one list per "
                             "slot, or one flat list shared by all slots")
        return [token_list(v, f"[{i}]") for i, v in enumerate(vocabulary)]
    return token_list(vocabulary, "")


def _vocabulary_ids(vocabulary: list[str] | list[list[str]], tokenizer: Any
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token ids (V',) of the vocabulary and, for per-slot lists, the mask (n, V') of the ids
    each slot may use (the lists are concatenated)."""
    per_slot = isinstance(vocabulary[0], list)
    tokens = [t for group in vocabulary for t in group] if per_slot else vocabulary
    vocab = tokenizer.get_vocab()
    missing = [t for t in tokens if t not in vocab]
    if missing:
        raise ValueError(f"{OPTIONS_FIELD}['vocabulary']: tokens not in the LM's vocabulary: "
                         f"{missing[:10]}")
    ids = torch.tensor([vocab[t] for t in tokens])
    if not per_slot:
        return ids, None
    mask = torch.zeros(len(vocabulary), len(tokens), dtype=torch.bool)
    start = 0
    for slot, group in enumerate(vocabulary):
        mask[slot, start:start + len(group)] = True
        start += len(group)
    return ids, mask
