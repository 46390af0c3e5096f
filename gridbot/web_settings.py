"""The settings of gridbot's HTTP server, beside it (gridbot/web.py), as the platforms'
settings are beside their adapters."""

from __future__ import annotations

from pydantic import Field

from gridbot.settings.fields import NonEmpty, Section


class HttpSettings(Section):
    """The HTTP server of `gridbot run`: GET /healthz, and webhooks (Telegram webhook mode,
    WeCom and Official Account callbacks). Put a TLS proxy in front of it."""

    host: NonEmpty = Field("127.0.0.1", description="the address to listen on")
    port: int = Field(8080, ge=0, le=65535, strict=True,
                      description="the port to listen on (0: any free port)")
