"""Who may do what, checked in one place.

Which roles may use a command at all, and in which kind of chat, is part of its
declaration beside its handler (:mod:`gridbot.declare`); :func:`check_command` applies
it. :func:`can_handle_case` says whether a person may act on one particular case (their
scope in the org tree, or the case having been handed to them).
"""

from __future__ import annotations

from gridbot.declare import (
    EVERYONE,
    LEADERS,
    NOTICE_SENDERS,
    STAFF,
    STEWARDS_AND_UP,
    CommandSpec,
    Where,
)
from gridbot.domain import Case, Person, Role
from gridbot.errors import PermissionDenied, UserError
from gridbot.store.base import Transaction

__all__ = ["EVERYONE", "LEADERS", "NOTICE_SENDERS", "STAFF", "STEWARDS_AND_UP", "can_handle_case",
           "can_see_case", "check_command", "may_use", "scope"]


def may_use(person: Person, spec: CommandSpec) -> bool:
    """Whether the person's role may use the command at all (its declared ``roles``)."""
    return person.role in spec.roles


def check_command(person: Person, spec: CommandSpec, *, in_group: bool) -> None:
    """Refuse a command the person's role may not use, or one said in the wrong kind of
    chat (``绑定`` in private)."""
    if not may_use(person, spec):
        raise PermissionDenied("error_permission", command=spec.name, role=person.role.value)
    if (spec.where is Where.GROUP and not in_group) or (spec.where is Where.PRIVATE
                                                        and in_group):
        raise UserError("error_where", command=spec.name, where=spec.where.value)


async def scope(tx: Transaction, person: Person) -> frozenset[str]:
    """Micro-grid codes a person looks after."""
    if person.role is Role.RESIDENT:
        return frozenset()
    if person.role is Role.STEWARD:
        return frozenset({person.unit, *await tx.rosters_of(person.id)})
    return frozenset(await tx.microgrids_under(person.unit))


async def can_handle_case(tx: Transaction, person: Person, case: Case) -> bool:
    """Assigned to them, or in their part of the tree at or above the case's level."""
    if person.role is Role.RESIDENT:
        return False
    if case.assignee_id == person.id:
        return True
    return person.role.rank >= case.level and case.microgrid in await scope(tx, person)


async def can_see_case(tx: Transaction, person: Person, case: Case) -> bool:
    if case.reporter_id == person.id or case.assignee_id == person.id:
        return True
    return person.role is not Role.RESIDENT and case.microgrid in await scope(tx, person)
