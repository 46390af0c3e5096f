"""Who may do what: one table, checked in one place.

The table says which roles may use a command at all; :func:`can_handle_case` says
whether a person may act on one particular case (their scope in the org tree, or
the case having been handed to them).
"""

from __future__ import annotations

from gridbot.domain import Case, Person, Role
from gridbot.errors import PermissionDenied
from gridbot.store.base import Transaction

EVERYONE = frozenset(Role)
STEWARDS_AND_UP = frozenset({Role.STEWARD, Role.GRID_LEADER, Role.COMMUNITY_STAFF,
                             Role.SUBDISTRICT_ADMIN})
STAFF = frozenset({Role.COMMUNITY_STAFF, Role.SUBDISTRICT_ADMIN})
#: the levels above the steward, who decide on requests and re-route cases
LEADERS = frozenset({Role.GRID_LEADER, Role.COMMUNITY_STAFF, Role.SUBDISTRICT_ADMIN})
#: grid leaders to their grid, community staff to their community, admins to everything
NOTICE_SENDERS = frozenset({Role.GRID_LEADER, Role.COMMUNITY_STAFF, Role.SUBDISTRICT_ADMIN})

#: command -> roles allowed to use it at all
ALLOWED: dict[str, frozenset[Role]] = {
    "report": EVERYONE,
    "file": EVERYONE,        # whoever presses the offer's button, in the offer's chat
    "status": EVERYONE,
    "cancel": EVERYONE,      # only the reporter, checked per case
    "confirm": EVERYONE,     # likewise
    "reopen": EVERYONE,      # likewise
    "rate": EVERYONE,        # likewise
    "help": EVERYONE,
    "link": EVERYONE,
    "claim": STEWARDS_AND_UP,
    "note": STEWARDS_AND_UP,
    "done": STEWARDS_AND_UP,
    "transfer": STEWARDS_AND_UP,
    "escalate": STEWARDS_AND_UP,
    "mine": STEWARDS_AND_UP,
    "duty": STEWARDS_AND_UP,
    "overdue": STEWARDS_AND_UP,
    "extend": STEWARDS_AND_UP,
    "return": STEWARDS_AND_UP,   # the steward of the case, checked per case
    "approve": LEADERS,
    "refuse": LEADERS,
    "reroute": LEADERS,
    "bind": STAFF,
    # Anyone may *say* "通知…": a resident passing on the water company's notice in a
    # group is chatting, not commanding, so the handler checks the role itself (and
    # stays silent in groups). The rest of the family is for notice senders only.
    "notice": EVERYONE,
    "notices": NOTICE_SENDERS,
    "cancel_notice": NOTICE_SENDERS,
    "ack": EVERYONE,
    "stats": STEWARDS_AND_UP,   # within their part of the tree, checked per scope
}


def may_use(person: Person, command: str) -> bool:
    """Whether the person's role may use the command at all (see :data:`ALLOWED`)."""
    return person.role in ALLOWED[command]


def check_command(person: Person, command: str) -> None:
    if person.role not in ALLOWED[command]:
        raise PermissionDenied("error_permission", command=command, role=person.role.value)


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
