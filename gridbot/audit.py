"""The audit log: every staff action, one append-only row, and ``gridbot forget``.

Written in one place: :meth:`gridbot.engine.Engine` calls :func:`record` after a handler
succeeded, in the handler's own transaction, so an action and its audit row are
committed together or not at all. The command line writes its own actions (``forget``)
the same way. A summary holds the action's structured part only (a case number, a
micro-grid code, a duration, a scope), never the free text of a note or reason (that
stays in the case's events) and never a link code.
"""

from __future__ import annotations

from datetime import datetime

from gridbot.commands import split_case_number, split_word
from gridbot.domain import Role
from gridbot.store.base import AuditEntry, Transaction

#: chat commands that change something, recorded when a staff member ran them
#: (``link`` whoever ran it: it hands an account a person's rights)
CASE_ACTIONS = frozenset({"claim", "note", "done", "transfer", "escalate", "extend",
                          "approve", "refuse", "return", "reroute"})
OTHER_ACTIONS = frozenset({"bind", "duty", "link", "notice", "cancel_notice", "web"})
AUDITED = CASE_ACTIONS | OTHER_ACTIONS
SUMMARY_MAX = 80


def entry_for(command: str, args: str, *, actor_id: str, role: Role, via: str,
              at: datetime, chat: str) -> AuditEntry | None:
    """The audit row for a command that succeeded, or None when it is not audited."""
    if command not in AUDITED or (role is Role.RESIDENT and command != "link"):
        return None
    target, summary = "", ""
    if command in CASE_ACTIONS:
        number, rest = split_case_number(args)
        target = f"#{number}" if number is not None else ""
        if command in {"transfer", "reroute", "extend"}:
            summary = split_word(rest)[0]  # whom to, which micro-grid, how long
    elif command == "notice":
        number, rest = split_case_number(args)
        if number is not None and not rest:
            return None  # looking at a notice's progress changes nothing
        summary = split_word(args)[0]  # the scope, not the text
    elif command == "cancel_notice":
        number, _ = split_case_number(args)
        target = f"notice {number}" if number is not None else ""
    elif command == "bind":
        target, summary = chat, args.strip()
    elif command == "duty":
        target, summary = actor_id, args.strip()
    elif command in ("link", "web"):
        target = actor_id  # never the code, never the login link
    return AuditEntry(at=at, actor_id=actor_id, role=role.value, via=via, action=command,
                      target=target[:SUMMARY_MAX], summary=summary[:SUMMARY_MAX])


async def record(tx: Transaction, entry: AuditEntry | None) -> None:
    if entry is not None:
        await tx.add_audit(entry)
