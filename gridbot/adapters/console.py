"""The console: a local chat in the terminal, with no account and no network."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from gridbot.adapters.base import Adapter
from gridbot.domain import Attachment, Outgoing, TextFormat

PLATFORM = "console"


def group_chat_id(microgrid: str) -> str:
    return f"group:{microgrid}"


def private_chat_id(person_id: str) -> str:
    return f"dm:{person_id}"


@dataclass(frozen=True, kw_only=True)
class Delivered:
    """One message as the console showed it, kept for tests and transcripts."""

    recipient: str
    message: Outgoing


class ConsoleAdapter(Adapter):
    name = PLATFORM
    fmt = TextFormat.PLAIN
    buttons = True  # shown with the command each one sends

    def __init__(self, out: TextIO | None = None, labels: dict[str, str] | None = None,
                 files: Path | None = None) -> None:
        self.out = out
        #: where files the bot made (charts) are saved, so they can be opened; None: not kept
        self.files = files
        #: chat id -> how to name it ("群「幸福里1-3幢」", "私聊 张阿姨")
        self.labels = labels if labels is not None else {}
        self.delivered: list[Delivered] = []
        self._ids = itertools.count(1)

    async def send(self, message: Outgoing) -> str:
        recipient = self.labels.get(message.chat_id, message.chat_id)
        self.delivered.append(Delivered(recipient=recipient, message=message))
        if self.out is not None:
            lines = message.text.splitlines() or [""]
            self.out.write(f"  → {recipient}: {lines[0]}\n")
            for line in lines[1:]:
                self.out.write(f"      {line}\n")
            if message.buttons:
                buttons = "  ".join(f"[{b.label} ⇒ {b.command}]" for b in message.buttons)
                self.out.write(f"      {buttons}\n")
            for attachment in message.attachments:
                self.out.write(f"      📎 {self._describe(attachment)}\n")
            self.out.flush()
        return str(next(self._ids))

    def _describe(self, attachment: Attachment) -> str:
        """Evidence by its reference; a file the bot made by its name and size, and where
        it was saved."""
        kind = attachment.kind.value
        data = attachment.content()
        if data is None:
            return f"{kind}: {attachment.ref}"
        name = attachment.name or f"file.{attachment.mime.rpartition('/')[2] or 'bin'}"
        size = f"{max(1, round(len(data) / 1024))} KB"
        if self.files is None:
            return f"{kind}: {name} ({size})"
        self.files.mkdir(parents=True, exist_ok=True)
        path = self.files / Path(name).name  # a name is never a path
        path.write_bytes(data)
        return f"{kind}: {name} ({size}) → {path}"
