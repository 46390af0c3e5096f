"""Classifying a report: its category and priority from the configured words
(``[policy]``'s categories, urgent and low keywords)."""

from __future__ import annotations

from functools import lru_cache

from gridbot.config import Policy
from gridbot.domain import Priority


def classify(policy: Policy, text: str) -> tuple[str, Priority]:
    """Category by the most keyword hits (ties: config order); urgent words win priority."""
    lowered = text.lower()
    best, best_hits = None, 0
    for category in policy.categories:
        hits = sum(kw in lowered for kw in _lower(category.keywords))
        if hits > best_hits:
            best, best_hits = category, hits
    if any(kw in lowered for kw in _lower(policy.urgent_keywords)):
        priority = Priority.URGENT
    elif best is not None:
        priority = best.priority
    elif any(kw in lowered for kw in _lower(policy.low_keywords)):
        priority = Priority.LOW
    else:
        priority = Priority.NORMAL
    return (best.code if best else policy.default_category), priority


@lru_cache(maxsize=256)
def _lower(keywords: tuple[str, ...]) -> tuple[str, ...]:
    """A configuration's keywords in lower case, worked out once (every report asks)."""
    return tuple(kw.lower() for kw in keywords)
