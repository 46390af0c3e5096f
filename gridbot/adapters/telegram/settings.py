"""``[telegram]``: what the Telegram adapter needs, as the configuration file holds it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

from pydantic import Field, SecretStr

from gridbot.settings.environment import is_deferred
from gridbot.settings.fields import (
    NonEmpty,
    OptionalSecret,
    PlatformSection,
    Secret,
    Text,
    secret_value,
)
from gridbot.settings.issues import Issue

WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class TelegramSettings(PlatformSection):
    """The Telegram bot (README: Running on Telegram). Leave the section out, or set
    ``enabled = false``, to run without it."""

    enabled: bool = Field(True, strict=True,
                          description="false: run without Telegram, keeping the settings")
    token: Secret = Field(description="the bot's token from @BotFather (disable its privacy "
                                      "mode there); best given as env:NAME")
    base_url: NonEmpty = Field("https://api.telegram.org/bot",
                               description="the Bot API's address; self-hosted Bot API "
                                           "servers differ")
    base_file_url: NonEmpty = Field("https://api.telegram.org/file/bot",
                                    description="where the Bot API serves files")
    mode: Literal["polling", "webhook"] = Field(
        "polling", description="how updates arrive: polling asks Telegram; webhook needs a "
                               "public HTTPS address proxied to [http]")
    webhook_url: Text = Field("", description="webhook mode: the public https:// URL "
                                              "Telegram posts to (proxied to [http] host:port)")
    webhook_secret: OptionalSecret = Field(
        SecretStr(""), description="webhook mode: 1-256 of A-Z a-z 0-9 _ -, which Telegram "
                                   "sends with every update")

    def issues(self) -> Iterator[Issue]:
        """What is wrong across keys: webhook mode needs its secret and URL."""
        if self.mode != "webhook":
            return
        secret = secret_value(self.webhook_secret)
        if not is_deferred(self.webhook_secret) and not WEBHOOK_SECRET.fullmatch(secret):
            yield Issue(("webhook_secret",), secret, "webhook_secret", secret=True)
        if not is_deferred(self.webhook_url) and not self.webhook_url.startswith("https://"):
            yield Issue(("webhook_url",), self.webhook_url, "webhook_url")
