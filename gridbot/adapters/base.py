"""The adapter interface: a name, how text is formatted, and one way to send."""

from __future__ import annotations

from abc import ABC, abstractmethod

from gridbot.domain import Outgoing, TextFormat


class Adapter(ABC):
    """One platform.

    Adapters turn whatever their platform delivers into :class:`~gridbot.domain.Incoming`
    and hand it to :meth:`gridbot.engine.Engine.handle`; the engine never sees a
    platform type. Outgoing messages reach :meth:`send` only through the outbox.
    """

    #: the platform name stored with accounts, chats and outbox rows
    name: str
    #: how this platform wants text; the engine escapes accordingly when rendering
    fmt: TextFormat = TextFormat.PLAIN
    #: the bot's own username, so ``/claim@OtherBot`` is left alone
    bot_username: str | None = None

    @abstractmethod
    async def send(self, message: Outgoing) -> str:
        """Deliver one message and return the platform's id for it.

        Raise :class:`gridbot.errors.PlatformError` on failure, ``permanent=True`` when a
        retry cannot help (the bot was removed, the user blocked it) and with
        ``retry_after`` when the platform asked to wait.
        """
