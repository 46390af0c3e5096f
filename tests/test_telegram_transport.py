"""The HTTP under python-telegram-bot (``gridbot/adapters/telegram/transport.py``).

PTB's real ``Bot`` runs on :class:`AiohttpRequest` against the local fake Bot API (the
``telegram`` fixture of tests/telegram_harness.py) and a small server of its own on
127.0.0.1 (a proxy, a TLS server): the pool and its timeout, an answer that comes too late,
a refused connection, uploads with Chinese file names, the proxy the environment names,
TLS verified, and how the adapter sorts each failure (sent or not, outage or not).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from gridbot.adapters.telegram.adapter import _platform_error
from gridbot.adapters.telegram.transport import AiohttpRequest, PoolTimeout
from tests.fake_telegram import FakeBot, FakeTelegram

TOKEN = "7001234567:AAFakeTokenForTransportTests-123456789"
CHAT = -1001234500001


@pytest.fixture
def account(telegram: FakeTelegram) -> FakeBot:
    bot = telegram.bot(TOKEN, "TransportBot")
    bot.group(CHAT, "幸福里1-3幢 邻里群")
    return bot


async def _bot(base_url: str, request: AiohttpRequest) -> Bot:
    bot = Bot(TOKEN, base_url=base_url, request=request,
              get_updates_request=AiohttpRequest(pool_size=1))
    try:
        await bot.initialize()
    except Exception:
        await bot.shutdown()
        raise
    return bot


async def test_a_message_goes_out_and_its_answer_comes_back(
        telegram: FakeTelegram, account: FakeBot) -> None:
    bot = await _bot(telegram.base_url, AiohttpRequest())
    try:
        sent = await bot.send_message(CHAT, "<b>工单 #12</b> 3幢楼道灯坏了 &amp; 🙂",
                                      parse_mode="HTML")
        assert bot.username == "TransportBot"
    finally:
        await bot.shutdown()
    [message] = account.sent_to(CHAT)
    assert message.plain == "工单 #12 3幢楼道灯坏了 & 🙂"
    assert sent.message_id == message.message_id


async def test_a_full_pool_fails_the_call_before_it_leaves(
        telegram: FakeTelegram, account: FakeBot) -> None:
    bot = await _bot(telegram.base_url, AiohttpRequest(pool_size=1, pool_timeout=0.2))
    try:
        account.delay("sendMessage", 1.0)
        first = asyncio.create_task(bot.send_message(CHAT, "第一条"))
        await telegram.until(lambda: account.late)  # under way, holding the one place
        with pytest.raises(TimedOut) as raised:
            await bot.send_message(CHAT, "第二条")
        assert isinstance(raised.value.__cause__, PoolTimeout)
        error = _platform_error(raised.value)
        assert not error.uncertain and not error.outage  # never left: safe to send again
        await first
    finally:
        await bot.shutdown()
    assert [s.plain for s in account.sent_to(CHAT)] == ["第一条"]


async def test_an_answer_too_late_is_a_timeout_that_may_have_arrived(
        telegram: FakeTelegram, account: FakeBot) -> None:
    bot = await _bot(telegram.base_url, AiohttpRequest(read_timeout=0.3))
    try:
        account.delay("sendMessage", 1.5)
        with pytest.raises(TimedOut) as raised:
            await bot.send_message(CHAT, "迟到的回答")
        assert _platform_error(raised.value).uncertain
        await telegram.until(lambda: not account.late)
    finally:
        await bot.shutdown()
    assert [s.plain for s in account.sent_to(CHAT)] == ["迟到的回答"]  # it had arrived


async def test_a_refused_connection_is_an_outage(unused_tcp_port: int) -> None:
    bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{unused_tcp_port}/bot",
              request=AiohttpRequest(), get_updates_request=AiohttpRequest(pool_size=1))
    with pytest.raises(NetworkError) as raised:
        await bot.initialize()
    await bot.shutdown()
    assert isinstance(raised.value.__cause__, aiohttp.ClientConnectorError)
    error = _platform_error(raised.value)
    assert error.outage and not error.uncertain


def test_a_connection_that_timed_out_is_an_outage() -> None:
    """What the transport raises when aiohttp's connect timeout passes."""
    try:
        try:
            raise aiohttp.ConnectionTimeoutError("Connection timeout to host")
        except aiohttp.ConnectionTimeoutError as exc:
            raise TimedOut("Connection timed out") from exc
    except TimedOut as timed_out:
        error = _platform_error(timed_out)
    assert error.outage and not error.uncertain


async def test_an_upload_keeps_its_chinese_file_name(
        telegram: FakeTelegram, account: FakeBot) -> None:
    bot = await _bot(telegram.base_url, AiohttpRequest())
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    try:
        await bot.send_document(CHAT, png, filename="11月 报事统计\"图\".png",
                                caption="月报")
    finally:
        await bot.shutdown()
    [sent] = account.sent_to(CHAT)
    assert sent.media is not None and sent.media[0] == "document"
    upload = account.uploads[sent.media[1]]
    assert upload.data == png
    assert upload.filename == "11月 报事统计\"图\".png"


class _Answering:
    """A server that answers every call itself (getMe as a bot), and notes each request
    line it was asked; over TLS when given a context; with a redirect to ``redirect``
    instead, when given one."""

    def __init__(self, tls: ssl.SSLContext | None = None, redirect: str = "") -> None:
        self.lines: list[str] = []
        self.port = 0
        self._tls = tls
        self._redirect = redirect
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                self.lines.append(line.decode().strip())
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                if self._redirect:
                    writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: %s\r\n"
                                 b"Content-Length: 0\r\n\r\n" % self._redirect.encode())
                    await writer.drain()
                    continue
                body = json.dumps({"ok": True, "result": {
                    "id": 7001, "is_bot": True, "first_name": "Answered",
                    "username": "AnsweredBot"}}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (ssl.SSLError, ConnectionError):
            pass  # a client that refused our certificate
        writer.close()


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gridbot test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_tls_is_verified_against_certifi_or_the_ca_the_environment_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert_file, key_file = _certificate(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    server = _Answering(tls)
    await server.start()
    try:
        for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy",
                     "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        base = f"https://127.0.0.1:{server.port}/bot"
        # A certificate no known authority signed: refused, nothing asked of the server.
        with pytest.raises(NetworkError) as refused:
            await _bot(base, AiohttpRequest())
        assert isinstance(refused.value.__cause__, aiohttp.ClientConnectorCertificateError)
        assert server.lines == []
        # The office's own authority, named as httpx read it: trusted.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        bot = await _bot(base, AiohttpRequest())
        await bot.shutdown()
        assert bot.username == "AnsweredBot"
        assert server.lines == [f"POST /bot{TOKEN}/getMe HTTP/1.1"]
    finally:
        await server.stop()


async def test_a_redirect_is_not_followed(unused_tcp_port: int) -> None:
    """Where the Bot API's address sends a call elsewhere (a misconfigured proxy, a login
    page), the call fails there: followed, it would carry the token to the other host."""
    elsewhere = _Answering()
    await elsewhere.start()
    redirecting = _Answering(redirect=f"http://127.0.0.1:{elsewhere.port}/bot{TOKEN}/getMe")
    await redirecting.start()
    try:
        with pytest.raises(NetworkError) as raised:
            await _bot(f"http://127.0.0.1:{redirecting.port}/bot", AiohttpRequest())
        assert "307" in raised.value.message
        assert redirecting.lines == [f"POST /bot{TOKEN}/getMe HTTP/1.1"]
        assert elsewhere.lines == []
    finally:
        await redirecting.stop()
        await elsewhere.stop()


@pytest.fixture
async def proxy() -> AsyncIterator[_Answering]:
    """An HTTP proxy that answers every call itself: enough to see which went through it."""
    server = _Answering()
    await server.start()
    yield server
    await server.stop()


async def test_the_proxy_the_environment_names_carries_the_calls(
        proxy: _Answering, unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    base = f"http://127.0.0.1:{unused_tcp_port}/bot"  # nothing listens there
    bot = await _bot(base, AiohttpRequest())
    await bot.shutdown()
    assert bot.username == "AnsweredBot"
    assert proxy.lines == [f"POST {base}{TOKEN}/getMe HTTP/1.1"]
    # NO_PROXY names the host: the call goes straight there (and finds nobody)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with pytest.raises(NetworkError):
        await _bot(base, AiohttpRequest())
    assert len(proxy.lines) == 1


async def test_a_socks_proxy_is_refused_in_words(monkeypatch: pytest.MonkeyPatch,
                                                  unused_tcp_port: int) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{unused_tcp_port}/bot",
              request=AiohttpRequest(), get_updates_request=AiohttpRequest(pool_size=1))
    with pytest.raises(NetworkError, match=r"socks5:// is not supported; use an http:// proxy"):
        await bot.initialize()
    await bot.shutdown()


async def test_calls_before_initialize_and_after_shutdown_are_refused(
        telegram: FakeTelegram, account: FakeBot) -> None:
    request = AiohttpRequest()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{telegram.base_url}{TOKEN}/getMe", "POST")
    await request.initialize()
    status, body = await request.do_request(f"{telegram.base_url}{TOKEN}/getMe", "POST")
    assert status == 200 and json.loads(body)["result"]["username"] == "TransportBot"
    await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{telegram.base_url}{TOKEN}/getMe", "POST")
    await request.initialize()  # opened again, as PTB may
    status, _ = await request.do_request(f"{telegram.base_url}{TOKEN}/getMe", "POST")
    await request.shutdown()
    assert status == 200
