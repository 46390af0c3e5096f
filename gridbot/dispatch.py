"""The command registry the handler modules fill in."""

from __future__ import annotations

from collections.abc import Callable

from gridbot.commands import SPECS
from gridbot.context import Handler

#: the registry's slot for what is said that is no command ("7幢阳台冒烟了！")
CHAT = "(chat)"


class Registry(dict[str, Handler]):
    def command(self, name: str) -> Callable[[Handler], Handler]:
        if name not in SPECS:
            raise KeyError(f"no command spec named {name!r}")
        return self._register(name)

    def chat(self) -> Callable[[Handler], Handler]:
        """The handler of plain words, no command: the engine hands it every message that
        parses as none (what it answers is its own choice)."""
        return self._register(CHAT)

    def _register(self, name: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if name in self:
                raise KeyError(f"command {name!r} registered twice")
            self[name] = handler
            return handler

        return register
