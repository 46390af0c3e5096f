"""``[web]``: the office console, served by ``gridbot run`` on the [http] server."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pydantic import Field, SecretStr

from gridbot.settings.environment import is_deferred
from gridbot.settings.fields import OptionalSecret, PlatformSection, Text, secret_value
from gridbot.settings.issues import Issue

#: a base path: "/console", "/office/console"; not "/" (the webhooks live beside it)
WEB_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")
#: the shortest session secret taken: 32 hex digits
MIN_SECRET = 16


class WebSettings(PlatformSection):
    """The office console (README: The office console). Leave the section out, or set
    ``enabled = false``, to run without it."""

    enabled: bool = Field(True, strict=True,
                          description="false: serve no console, keeping the settings")
    path: Text = Field("/console", description="where the console lives on the [http] server, "
                                               "e.g. /console")
    public_url: Text = Field(
        "", description="the address people open, as the HTTPS proxy in front serves it "
                        "(e.g. https://grid.example.org); empty: http://[http] host:port. "
                        "Login links start with it; https:// makes cookies Secure")
    secret: OptionalSecret = Field(
        SecretStr(""), description="signs the console's cookies (at least 16 characters, best "
                                   "given as env:NAME); empty: derived from [gridbot] secret "
                                   "or the key file")
    session_hours: int = Field(12, ge=1, le=24 * 30, strict=True,
                               description="a login lasts this long, then the link is needed "
                                           "again")
    link_minutes: int = Field(10, ge=1, le=60, strict=True,
                              description="a login link works once, within this many minutes")
    logins_per_minute: int = Field(10, ge=1, le=1000, strict=True,
                                   description="login attempts taken per minute from one "
                                               "address; more are refused for a minute")

    def issues(self) -> Iterator[Issue]:
        if not WEB_PATH.fullmatch(self.path):
            yield Issue(("path",), self.path, "web_path")
        if self.public_url and not is_deferred(self.public_url) and not re.fullmatch(
                r"https?://[^/\s?#]+(/[^\s?#]*)?", self.public_url):
            yield Issue(("public_url",), self.public_url, "public_url")
        secret = secret_value(self.secret)
        if secret and not is_deferred(self.secret) and len(secret) < MIN_SECRET:
            yield Issue(("secret",), "", "secret_length", secret=True)

    @property
    def base_path(self) -> str:
        return self.path.rstrip("/")
