"""Per-query scores averaged overall and per group (style, answer type, ...), in percent."""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence


def mean_by_group(name: str, values: Sequence[float], groups: Sequence[str]) -> dict[str, float]:
    """{name: mean x 100, "name[group]": group mean x 100 for each non-empty group}."""
    if not values:
        return {}
    scores = {name: 100.0 * sum(values) / len(values)}
    by_group: dict[str, list[float]] = defaultdict(list)
    for value, group in zip(values, groups, strict=True):
        if group:
            by_group[group].append(value)
    for group in sorted(by_group):
        scores[f"{name}[{group}]"] = 100.0 * sum(by_group[group]) / len(by_group[group])
    return scores


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the prediction equals one of the references exactly, else 0.0."""
    return 1.0 if prediction in references else 0.0
