"""The settings of gridbot's HTTP server, beside it (gridbot/web.py), as the platforms'
settings are beside their adapters: ``[http]``, and ``[metrics]`` for ``/metrics``."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr

from gridbot.settings.fields import (
    NonEmpty,
    OptionalSecret,
    PlatformSection,
    Section,
    Shape,
    expect,
    secret_value,
)


class HttpSettings(Section):
    """The HTTP server of `gridbot run`: GET /healthz, and webhooks (Telegram webhook mode,
    WeCom and Official Account callbacks). Put a TLS proxy in front of it."""

    host: NonEmpty = Field("127.0.0.1", description="the address to listen on")
    port: int = Field(8080, ge=0, le=65535, strict=True,
                      description="the port to listen on (0: any free port)")


def _networks(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise expect("strings")
    found = []
    for item in value:
        try:
            found.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
        except ValueError:
            raise expect("strings") from None
    return tuple(found)


Networks = Annotated[tuple[str, ...], BeforeValidator(_networks),
                     Shape("list of addresses or networks (127.0.0.1, 10.0.0.0/8)")]


class MetricsSettings(PlatformSection):
    """GET /metrics on the [http] server, in Prometheus' text format: off unless a token or
    an allow-list is set. Its ``env:`` token is read by `gridbot run` only, like a
    platform's secrets."""

    token: OptionalSecret = Field(
        SecretStr(""), description="a scraper sending Authorization: Bearer TOKEN may read "
                                   "/metrics; best given as env:NAME")
    allow: Networks = Field((), description="addresses that may read /metrics without the "
                                            "token (a Prometheus on this machine: 127.0.0.1)")

    @property
    def enabled(self) -> bool:
        return bool(secret_value(self.token) or self.allow)
