"""The command registry the handler modules fill in."""

from __future__ import annotations

from collections.abc import Callable

from gridbot.commands import SPECS
from gridbot.context import Handler


class Registry(dict[str, Handler]):
    def command(self, name: str) -> Callable[[Handler], Handler]:
        if name not in SPECS:
            raise KeyError(f"no command spec named {name!r}")

        def register(handler: Handler) -> Handler:
            if name in self:
                raise KeyError(f"command {name!r} registered twice")
            self[name] = handler
            return handler

        return register
