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

    residents: bool = Field(True, strict=True,
                            description="serve the residents' pages (report by link or QR "
                                        "code, case news, 收到 for notices) under "
                                        "residents_path")
    residents_path: Text = Field("/r", description="where the residents' pages live on the "
                                                   "[http] server, e.g. /r")
    reports_per_hour: int = Field(20, ge=1, le=10_000, strict=True,
                                  description="reports taken per hour from one address on "
                                              "the residents' page (urgent ones always)")
    acks_per_minute: int = Field(120, ge=1, le=10_000, strict=True,
                                 description="收到 taps taken per minute from one address "
                                             "(a carrier's NAT puts many phones behind one)")
    photo_mb: int = Field(8, ge=1, le=20, strict=True,
                          description="the largest photo a resident may send, in MB (it is "
                                      "resized and stripped of its location before keeping)")
    device_days: int = Field(400, ge=1, le=3650, strict=True,
                             description="how long a resident's phone stays recognised "
                                         "without coming back")

    def issues(self) -> Iterator[Issue]:
        if not WEB_PATH.fullmatch(self.path):
            yield Issue(("path",), self.path, "web_path")
        if not WEB_PATH.fullmatch(self.residents_path) or \
                self.residents_path.rstrip("/") == self.base_path:
            yield Issue(("residents_path",), self.residents_path, "web_path")
        if self.public_url and not is_deferred(self.public_url) and not re.fullmatch(
                r"https?://[^/\s?#]+(/[^\s?#]*)?", self.public_url):
            yield Issue(("public_url",), self.public_url, "public_url")
        secret = secret_value(self.secret)
        if secret and not is_deferred(self.secret) and len(secret) < MIN_SECRET:
            yield Issue(("secret",), "", "secret_length", secret=True)

    @property
    def base_path(self) -> str:
        return self.path.rstrip("/")
