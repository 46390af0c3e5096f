"""The conversation: one module per role or family of commands.

Importing this package fills :data:`REGISTRY`, which the engine uses by default.
"""

from gridbot.dispatch import Registry

REGISTRY = Registry()

from handlers import (  # noqa: E402  (they register into REGISTRY)
    account,
    notices,
    resident,
    stats,
    steward,
    workorder,
)

__all__ = ["REGISTRY", "account", "notices", "resident", "stats", "steward", "workorder"]
