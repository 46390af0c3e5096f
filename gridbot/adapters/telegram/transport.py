"""python-telegram-bot's HTTP calls made with aiohttp.

PTB speaks the Bot API (methods, parameters, answers, errors) and leaves the HTTP under
it to a :class:`~telegram.request.BaseRequest`; its own is httpx. Measured on the same
machine against the same fake Bot API, a ``sendMessage`` cost 1.3–1.6 ms of CPU through
httpx and 0.4–0.5 ms through aiohttp (BENCHMARKS.md), and a report costs two of them:
during a storm the bot spent more time in its HTTP client than on everything else.

What httpx gave the adapter, this keeps:

* a pool of ``pool_size`` requests under way, waiting at most ``pool_timeout`` for a
  place; past it, :class:`~telegram.error.TimedOut` caused by :class:`PoolTimeout` says
  the request never left this process;
* connect, read and write timeouts per call (PTB passes them), a connection that could
  not be made (:class:`aiohttp.ClientConnectorError`, :class:`aiohttp.ConnectionTimeoutError`
  as the cause) told apart from a request that left and got no answer;
* the proxy in ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY``, read once per host (an
  ``http://`` proxy; aiohttp has no SOCKS);
* certifi's CA bundle, as httpx used, so a slim container without system CAs still
  reaches api.telegram.org (or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, as httpx read them);
* uploads (charts, evidence) as multipart with UTF-8 file names;
* no redirect followed (the token is in the URL);
* a line per call at DEBUG, as httpx wrote (the URL's token masked by ``gridbot.logs``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import urllib.request
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import certifi
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

log = logging.getLogger(__name__)

#: PTB's own defaults (HTTPXRequest), seconds
CONNECT_TIMEOUT: Final = 5.0
READ_TIMEOUT: Final = 5.0
WRITE_TIMEOUT: Final = 5.0
MEDIA_WRITE_TIMEOUT: Final = 20.0
POOL_TIMEOUT: Final = 1.0
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
#: NO_PROXY's test (in urllib since Python 2, not in typeshed)
_bypassed: Callable[[str, dict[str, str]], bool] = \
    urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
#: what PTB passes for a timeout left to the request's own (its DefaultValue class)
_UNSET = type(BaseRequest.DEFAULT_NONE)


class PoolTimeout(Exception):
    """Every place in the pool stayed taken: the request was not sent."""


class AiohttpRequest(BaseRequest):
    """One pool of connections to the Bot API (PTB gives the bot two: calls, getUpdates)."""

    def __init__(self, *, pool_size: int = 256,
                 read_timeout: float | None = READ_TIMEOUT,
                 write_timeout: float | None = WRITE_TIMEOUT,
                 connect_timeout: float | None = CONNECT_TIMEOUT,
                 pool_timeout: float | None = POOL_TIMEOUT,
                 media_write_timeout: float | None = MEDIA_WRITE_TIMEOUT) -> None:
        self.pool_size = pool_size
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._places = asyncio.Semaphore(pool_size)
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.pool_size, ssl=_ssl_context())
            # no cookies (the Bot API sets none), no netrc or proxy lookup per request
            # (trust_env costs two thread hops a call; proxies are read once, below)
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: object = BaseRequest.DEFAULT_NONE,
                         write_timeout: object = BaseRequest.DEFAULT_NONE,
                         connect_timeout: object = BaseRequest.DEFAULT_NONE,
                         pool_timeout: object = BaseRequest.DEFAULT_NONE,
                         ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data is not None and request_data.contains_files
        read = _given(read_timeout, self._read)
        connect = _given(connect_timeout, self._connect)
        write = _given(write_timeout, self._media_write if files else self._write)
        # aiohttp has no write timeout: the whole call is bounded by the three together
        total = None if None in (read, connect, write) else \
            (read or 0.0) + (connect or 0.0) + (write or 0.0)
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)
        data: bytes | aiohttp.FormData | None = None
        headers = None
        if request_data is not None:
            if files:
                data = _multipart(request_data)
            else:
                data = request_data.url_encoded_parameters().encode()
                headers = _FORM
        try:
            async with asyncio.timeout(_given(pool_timeout, self._pool)):
                await self._places.acquire()
        except TimeoutError:
            raise TimedOut(
                "Pool timeout: All connections in the connection pool are occupied. Request "
                "was *not* sent to Telegram.") from PoolTimeout()
        try:
            # A redirect is not followed (httpx did not either): it would carry the token
            # in the URL to whatever host it names.
            async with session.request(method, url, data=data, headers=headers,
                                       timeout=timeout, proxy=self._proxy(url),
                                       allow_redirects=False) as answer:
                body = await answer.read()
            if log.isEnabledFor(logging.DEBUG):  # the version's text is not made otherwise
                # as httpx logged each call; the token in the URL is masked by gridbot's
                # log filter
                log.debug('HTTP Request: %s %s "HTTP/%s %d %s"', method, url,
                          ".".join(map(str, answer.version or ())), answer.status,
                          answer.reason)
            return answer.status, body
        except aiohttp.ConnectionTimeoutError as exc:
            raise TimedOut("Connection timed out") from exc
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{exc.__class__.__name__}: {exc}") from exc
        finally:
            self._places.release()

    def _proxy(self, url: str) -> str | None:
        """The proxy the environment names for ``url``'s host, looked up once."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxies:
            proxies = urllib.request.getproxies_environment()
            proxy = None
            if not _bypassed(key[1], proxies):
                proxy = proxies.get(key[0]) or proxies.get("all")
            if proxy is not None and not proxy.startswith(("http://", "https://")):
                raise NetworkError(f"proxy {proxy.split('://')[0]}:// is not supported; "
                                   "use an http:// proxy")
            self._proxies[key] = proxy
        return self._proxies[key]


def _given(value: object, default: float | None) -> float | None:
    if isinstance(value, _UNSET):
        return default
    return None if value is None else float(value)  # type: ignore[arg-type]


def _multipart(request_data: RequestData) -> aiohttp.FormData:
    # the file name as UTF-8 in quotes, as browsers and httpx send it (not %-escaped)
    form = aiohttp.FormData(quote_fields=False, charset="utf-8")
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mime) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mime)
    return form


def _ssl_context() -> ssl.SSLContext:
    """As httpx made it: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` if set (an office's own CA
    in front of the internet), else certifi's bundle."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())
