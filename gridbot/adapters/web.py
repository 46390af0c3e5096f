"""The ``web`` platform: what a person does on the office console reaches the engine as
a private message from here, and the engine's answers come back through the outbox.

There is nothing to send to: a message "sent" to a console chat is one the console shows
(it reads them from the outbox, :meth:`~gridbot.store.base.Transaction.answers`), so
:meth:`WebAdapter.send` only confirms it. News for a person (a case handed to them) thus
also reaches their console, but the console never counts as reaching anyone: routing
looks for a chat platform (:mod:`gridbot.policy.routing`).
"""

from __future__ import annotations

import uuid

from gridbot.adapters.base import Adapter
from gridbot.domain import WEB_PLATFORM, Outgoing, TextFormat


def chat_id(person_id: str) -> str:
    """A person's private chat with the bot, on the console."""
    return f"web:{person_id}"


class WebAdapter(Adapter):
    name = WEB_PLATFORM
    fmt = TextFormat.PLAIN
    buttons = True  # the page turns each one into a form that says its command

    async def send(self, message: Outgoing) -> str:
        return uuid.uuid4().hex

    def health(self) -> dict[str, str]:
        return {"mode": "console"}
