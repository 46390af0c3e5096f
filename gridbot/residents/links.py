"""The residents' links: a micro-grid's report link (on its QR poster) and the pages under
it, signed so that editing one into another micro-grid's is refused.

A link is ``{base}/{code}/{generation}.{signature}``: the micro-grid's code, the
generation it was made in and a keyed hash of both. Rotating a micro-grid's link (it
leaked into the wrong group) moves its generation on in the database, and every link of
an earlier generation is then refused with its own answer ("this code was replaced").
Nothing about a resident is ever in a URL: who they are travels in their cookie.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from gridbot.config import Config
from gridbot.console import auth
from gridbot.console.settings import WebSettings
from gridbot.store.base import Transaction

#: the signature's length in hex digits (80 bits: no one guesses it)
SIGNATURE = 20
_TOKEN = re.compile(r"(?P<generation>[1-9][0-9]{0,8})\.(?P<signature>[0-9a-f]{20})")


class Verdict(enum.StrEnum):
    """What a presented link is."""

    GOOD = "good"
    #: signed by us, but the micro-grid has rotated its link since
    REPLACED = "replaced"
    #: not ours: edited, truncated, or a micro-grid that does not exist
    FORGED = "forged"


@dataclass(frozen=True, kw_only=True)
class ReportLink:
    microgrid: str
    generation: int
    signature: str

    @property
    def token(self) -> str:
        return f"{self.generation}.{self.signature}"

    def path(self, suffix: str = "") -> str:
        """The link's path under the residents' base ("/M01/1.ab12…"), with ``suffix``."""
        return f"/{quote(self.microgrid, safe='')}/{self.token}{suffix}"


def residents_key(console_key: bytes) -> bytes:
    """The key the residents' links and cookies are signed with, apart from the console's."""
    return hmac.new(console_key, b"gridbot residents", hashlib.sha256).digest()


def sign(key: bytes, microgrid: str, generation: int) -> ReportLink:
    mac = hmac.new(key, f"report\0{microgrid}\0{generation}".encode(), hashlib.sha256)
    return ReportLink(microgrid=microgrid, generation=generation,
                      signature=mac.hexdigest()[:SIGNATURE])


async def current(tx: Transaction, key: bytes, microgrid: str) -> ReportLink:
    """The micro-grid's link as it is now."""
    return sign(key, microgrid, await tx.report_link_generation(microgrid))


async def check(tx: Transaction, key: bytes, microgrid: str, token: str,
                known: frozenset[str] | set[str] | dict[str, str]) -> Verdict:
    """Whether ``token`` is a link of ``microgrid`` (one of ``known``) we made, and
    still the current one."""
    match = _TOKEN.fullmatch(token)
    if match is None or microgrid not in known:
        return Verdict.FORGED
    generation = int(match["generation"])
    if not hmac.compare_digest(sign(key, microgrid, generation).signature,
                               match["signature"]):
        return Verdict.FORGED
    if generation != await tx.report_link_generation(microgrid):
        return Verdict.REPLACED
    return Verdict.GOOD


def base_url(config: Config, settings: WebSettings) -> str:
    """Where residents open their pages: the public URL's site (without the console's
    path, if it names it), or the [http] server itself, then ``residents_path``."""
    return beside(auth.base_url(config, settings), settings)


def site_of(console: str, settings: WebSettings) -> str:
    """The site the console at ``console`` is on (its address without the console's path):
    where the webhooks and callbacks are too."""
    site = console[:-len(settings.base_path)] if console.endswith(settings.base_path) \
        else console
    return site.rstrip("/")


def beside(console: str, settings: WebSettings) -> str:
    """The residents' base on the same site as the console at ``console`` (a running
    console's own address, whose port may have been chosen at start)."""
    return site_of(console, settings) + settings.residents_path.rstrip("/")


def key_for(config: Config, settings: WebSettings, install_key: Callable[[], bytes]) -> bytes:
    """The residents' key outside a running server (``gridbot qr``), as the server has it."""
    return residents_key(auth.console_key(settings, install_key))


async def urls(tx: Transaction, key: bytes, base: str, microgrids: Sequence[str],
               suffix: str = "") -> dict[str, str]:
    """Micro-grids' current report links (or a page under each), with one read of the
    rotated ones (a notice to hundreds of micro-grids lists them all)."""
    rotated = await tx.report_link_generations()
    return {code: base + sign(key, code, rotated.get(code, 1)).path(suffix)
            for code in microgrids}


async def url(tx: Transaction, key: bytes, base: str, microgrid: str, suffix: str = "") -> str:
    """The micro-grid's current report link (or a page under it), as residents open it."""
    return base + (await current(tx, key, microgrid)).path(suffix)


def maker(config: Config, install_key: Callable[[], bytes]
          ) -> Callable[[Transaction, Sequence[str], str], Awaitable[dict[str, str]]] | None:
    """How any process of this install (``gridbot run``, the command line) makes the
    residents' links, ``None`` where the pages are not served. A running server replaces
    it with its own (:class:`gridbot.residents.app.Residents`), whose base knows its port."""
    settings = config.web
    if settings is None or not settings.enabled or not settings.residents:
        return None
    keys: list[bytes] = []

    async def make(tx: Transaction, microgrids: Sequence[str], suffix: str = ""
                   ) -> dict[str, str]:
        if not keys:
            keys.append(key_for(config, settings, install_key))
        return await urls(tx, keys[0], base_url(config, settings), microgrids, suffix)
    return make
