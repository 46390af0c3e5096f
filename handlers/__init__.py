"""The conversation: one module per role or family of commands.

Each command is declared beside its handler (:func:`gridbot.declare.command`): its
words, who may use it and where, where the help page lists it. :data:`REGISTRY`
collects them in this order, and :data:`COMMANDS` reads chat with their words; the
engine uses both by default.
"""

from gridbot.commands import Commands
from gridbot.declare import Registry
from gridbot.handlers import (
    account,
    errands,
    notices,
    patrol,
    places,
    resident,
    stats,
    steward,
    swap,
    workorder,
)

#: every declared command, in the order of these modules and, within one, of its lines
REGISTRY = Registry.collect(resident, errands, steward, swap, patrol, workorder, places,
                            account, notices, stats)
#: the parser (and typo suggestions) of those commands
COMMANDS = Commands(REGISTRY.specs)

__all__ = ["COMMANDS", "REGISTRY", "account", "errands", "notices", "patrol", "places",
           "resident", "stats", "steward", "swap", "workorder"]
