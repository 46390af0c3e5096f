"""Logging in to the console without passwords: one-time links, signed session cookies,
CSRF tokens.

A link carries a random token; the database keeps only its keyed hash, spends it once
(:meth:`~gridbot.store.base.Transaction.use_web_login`) and only before it expires. The
session cookie carries a random id and its signature; the database keeps the id's hash,
so a copy of the database opens nothing, and ending the row (logout, the person removed)
ends the session wherever the cookie is. Every form of a session carries a token derived
from the session id, which a page on another site cannot know.

Keys: ``[web] secret`` when it is set, else one derived from the install's own secret
(:mod:`gridbot.keys`), so workers sharing a database and a secret accept each other's
cookies.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from gridbot.config import Config
from gridbot.console.settings import WebSettings
from gridbot.settings.fields import secret_value
from gridbot.store.base import Transaction

#: the cookie holding the session
COOKIE = "gridbot_console"
#: the form field (and header) carrying the CSRF token
CSRF_FIELD = "csrf"
#: how the login path looks: ``{path}/login/{token}``
LOGIN_PATH = "/login/"


def console_key(settings: WebSettings, install_key: Callable[[], bytes]) -> bytes:
    """The key the console signs and hashes with."""
    own = secret_value(settings.secret)
    if own:
        return hashlib.sha256(b"gridbot console\0" + own.encode()).digest()
    return hmac.new(install_key(), b"gridbot console", hashlib.sha256).digest()


def _mac(key: bytes, purpose: str, value: str) -> str:
    return hmac.new(key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()


def token_hash(key: bytes, token: str) -> str:
    """What the database keeps of a login token or a session id."""
    return _mac(key, "hash", token)


def base_url(config: Config, settings: WebSettings) -> str:
    """Where people open the console: the public URL, or the [http] server itself."""
    if settings.public_url:
        root = settings.public_url.rstrip("/")
        # A public URL may already name the console's path (a proxy serving only it).
        return root if root.endswith(settings.base_path) else root + settings.base_path
    host = config.http.host
    host = f"[{host}]" if ":" in host else ("127.0.0.1" if host in ("0.0.0.0", "") else host)
    return f"http://{host}:{config.http.port}{settings.base_path}"


async def issue_login(tx: Transaction, config: Config, key: bytes, person_id: str, *,
                      now: datetime, via: str, base: str | None = None) -> tuple[str, datetime]:
    """A one-time login link for a person, and when it stops working."""
    settings = config.web
    assert settings is not None, "the console is not configured"
    token = secrets.token_urlsafe(24)
    expires = now + timedelta(minutes=settings.link_minutes)
    await tx.add_web_login(token_hash(key, token), person_id, now=now, expires_at=expires,
                           via=via)
    return f"{base or base_url(config, settings)}{LOGIN_PATH}{token}", expires


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def signed(key: bytes, purpose: str, value: str) -> str:
    """``value`` with its signature for ``purpose``, to keep in a cookie."""
    return f"{value}.{_mac(key, purpose, value)[:32]}"


def unsigned(key: bytes, purpose: str, cookie: str | None, *, longest: int = 200) -> str | None:
    """The value a cookie carries, if its signature for ``purpose`` is ours."""
    if not cookie or "." not in cookie or len(cookie) > longest:
        return None
    value, _, signature = cookie.rpartition(".")
    if not value or not hmac.compare_digest(signature, _mac(key, purpose, value)[:32]):
        return None
    return value


def cookie_value(key: bytes, session_id: str) -> str:
    return signed(key, "cookie", session_id)


def session_id_of(key: bytes, cookie: str | None) -> str | None:
    """The session id a cookie carries, if its signature is ours."""
    return unsigned(key, "cookie", cookie)


def csrf_token(key: bytes, session_id: str) -> str:
    return _mac(key, "csrf", session_id)[:40]


def csrf_ok(key: bytes, session_id: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(str(sent), csrf_token(key, session_id))
