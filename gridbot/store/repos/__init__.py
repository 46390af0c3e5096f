"""The store's repositories, one per kind of record, each written once for both
databases (SQLAlchemy Core statements, compiled per :mod:`gridbot.store.dialect`).

A store's :class:`~gridbot.store.base.Transaction` is made of them (see
:class:`Repositories`), so callers keep calling ``tx.enqueue(…)``, ``tx.case(…)``."""

from __future__ import annotations

from gridbot.store.base import Transaction
from gridbot.store.repos.cases import CaseRepository
from gridbot.store.repos.console import ConsoleRepository
from gridbot.store.repos.customer_groups import CustomerGroupRepository
from gridbot.store.repos.errands import ErrandRepository
from gridbot.store.repos.figures import FiguresRepository
from gridbot.store.repos.forgetting import ForgetRepository
from gridbot.store.repos.group_tasks import GroupTaskRepository
from gridbot.store.repos.intake import IntakeRepository
from gridbot.store.repos.notices import NoticeRepository
from gridbot.store.repos.offers import ReportOfferRepository
from gridbot.store.repos.outbox import OutboxRepository
from gridbot.store.repos.people import PeopleRepository
from gridbot.store.repos.records import (
    AuditRepository,
    HeartbeatRepository,
    HouseholdRepository,
)
from gridbot.store.repos.residents import ResidentRepository
from gridbot.store.repos.watchers import WatcherRepository

__all__ = ["AuditRepository", "CaseRepository", "ConsoleRepository", "CustomerGroupRepository",
           "ErrandRepository", "FiguresRepository", "ForgetRepository", "GroupTaskRepository",
           "HeartbeatRepository",
           "HouseholdRepository", "IntakeRepository", "NoticeRepository", "OutboxRepository",
           "PeopleRepository", "ReportOfferRepository", "Repositories", "ResidentRepository",
           "StoreTransaction", "WatcherRepository"]


class Repositories(ResidentRepository, PeopleRepository, CaseRepository, IntakeRepository,
                   OutboxRepository, NoticeRepository, ReportOfferRepository,
                   HouseholdRepository, AuditRepository, HeartbeatRepository, ForgetRepository,
                   ConsoleRepository, FiguresRepository, ErrandRepository, WatcherRepository,
                   CustomerGroupRepository, GroupTaskRepository):
    """Every repository, as one object: what a transaction is made of."""


class StoreTransaction(Repositories, Transaction):
    """A transaction of either store: every repository, on the transaction's connection
    (a :class:`~gridbot.store.dialect.Sql`)."""
