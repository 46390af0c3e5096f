"""The store's repositories, one per kind of record, each written once for both
databases (SQLAlchemy Core statements, compiled per :mod:`gridbot.store.dialect`).

A store's :class:`~gridbot.store.base.Transaction` is made of them (see
:class:`Repositories`), so callers keep calling ``tx.enqueue(…)``, ``tx.case(…)``."""

from __future__ import annotations

from gridbot.store.repos.cases import CaseRepository
from gridbot.store.repos.intake import IntakeRepository
from gridbot.store.repos.outbox import OutboxRepository
from gridbot.store.repos.people import PeopleRepository

__all__ = ["CaseRepository", "IntakeRepository", "OutboxRepository", "PeopleRepository",
           "Repositories"]


class Repositories(PeopleRepository, CaseRepository, IntakeRepository, OutboxRepository):
    """Every repository moved to the shared implementation so far."""
