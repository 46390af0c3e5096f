"""Classifying a report: its category and priority from the configured words
(``[policy]``'s categories, urgent and low keywords)."""

from __future__ import annotations

from gridbot.config import Policy
from gridbot.domain import Priority


def classify(policy: Policy, text: str) -> tuple[str, Priority]:
    """Category by the most keyword hits (ties: config order); urgent words win priority."""
    lowered = text.lower()
    best, best_hits = None, 0
    for category in policy.categories:
        hits = sum(1 for kw in category.keywords if kw.lower() in lowered)
        if hits > best_hits:
            best, best_hits = category, hits
    if any(kw.lower() in lowered for kw in policy.urgent_keywords):
        priority = Priority.URGENT
    elif best is not None:
        priority = best.priority
    elif any(kw.lower() in lowered for kw in policy.low_keywords):
        priority = Priority.LOW
    else:
        priority = Priority.NORMAL
    return (best.code if best else policy.default_category), priority
