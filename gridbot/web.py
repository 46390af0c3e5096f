"""The project's HTTP server: ``/healthz`` plus whatever routes the adapters contribute.

One Starlette app served by uvicorn inside ``gridbot run``'s event loop, so webhook
handlers call the engine directly. Telegram mounts ``/telegram/webhook``, the WeCom
app ``/wechat/work`` and the Official Account ``/wechat/mp``, through
:meth:`Adapter.routes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from gridbot.config import HttpSettings
from gridbot.store.base import Store

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
#: messages set aside and given up that ``/healthz`` lists by platform, chat and id
KEPT_LISTED = 20


def build_app(store: Store, routes: Sequence[BaseRoute] = (),
              platforms: Callable[[], Mapping[str, Any]] = dict,
              duties: Callable[[], Sequence[str]] = tuple) -> Starlette:
    """The app: health first, then the adapters' routes; anything else is a 404."""

    async def healthz(request: Request) -> JSONResponse:
        """200 when the database answers; the outbox counts show a stuck sender, each
        platform whether it is sending, paused or down, and ``set_aside`` the messages
        whose handling failed (those given up are listed: someone should look)."""
        try:
            async with store.transaction() as tx:
                counts = await tx.outbox_counts()
                kept = await tx.set_aside_counts()
                given_up = [m for m in await tx.set_aside_messages(limit=KEPT_LISTED)
                            if m.given_up]
            reachable = True
        except Exception as exc:  # a health check reports, it does not raise
            log.warning("health check: the store did not answer: %s", exc)
            counts, kept, given_up, reachable = {}, {}, [], False
        outbox = {status: counts.get(status, 0)
                  for status in ("queued", "sending", "sent", "failed")}
        set_aside = {"waiting": kept.get("waiting", 0), "given_up": kept.get("given_up", 0),
                     "kept": [{"platform": m.incoming.platform, "chat": m.incoming.chat_id,
                               "message": m.incoming.message_id, "attempts": m.attempts,
                               "since": m.created_at.isoformat(timespec="seconds"),
                               "error": m.error.partition(":")[0]} for m in given_up]}
        body = {"ok": reachable, "store": reachable, "outbox": outbox,
                "set_aside": set_aside, "platforms": dict(platforms()),
                "duties": list(duties())}
        return JSONResponse(body, status_code=200 if reachable else 503)

    return Starlette(routes=[Route(HEALTH_PATH, healthz, methods=["GET"]), *routes])


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``gridbot run`` owns SIGINT/SIGTERM and
    stops the server itself, in its shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    def __init__(self, settings: HttpSettings, app: Starlette, *,
                 access_log: bool = False) -> None:
        """``access_log``: a line per request (``[logging] access_log``). uvicorn leaves
        logging alone (no ``log_config``): its lines go through gridbot's handlers, in
        gridbot's format, redacted (:mod:`gridbot.logs` sets their levels)."""
        self.settings = settings
        self.port = settings.port
        self._server = _Server(uvicorn.Config(
            app, host=settings.host, port=settings.port, lifespan="off", access_log=access_log,
            log_config=None, log_level=None, timeout_graceful_shutdown=10,
            server_header=False))
        if access_log:  # uvicorn cuts its access logger off when one server has it off
            logging.getLogger("uvicorn.access").propagate = True
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.settings.host}]" if ":" in self.settings.host else self.settings.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Listen, or raise OSError (the port is taken, the address is not this machine's).

        The socket is bound here rather than by uvicorn, which reports a failed bind by
        exiting the process; port 0 picks a free port (tests).
        """
        family = socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET
        sock = socket.create_server((self.settings.host, self.settings.port), family=family)
        # Accepted connections inherit this; without it each response waits ~40 ms for
        # the client's delayed ACK (a webhook update would take that much longer).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http")
        while not self._server.started:
            if self._task.done():
                sock.close()
                self._task.result()
                raise OSError(f"the HTTP server on {self.url} stopped while starting")
            await asyncio.sleep(0.005)
        log.info("HTTP server listening on %s", self.url)

    async def stop(self) -> None:
        """Stop accepting, let requests in progress (updates being handled) finish."""
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
