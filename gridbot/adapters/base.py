"""The adapter interface: a name, how text is formatted, one way to send, and a lifecycle;
and the intake, all an adapter sees of the engine."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from gridbot.domain import (
    Attachment,
    BindingRules,
    GroupCounts,
    GroupSeen,
    Incoming,
    Outcome,
    Outgoing,
    TextFormat,
)
from gridbot.errors import ConfigError, PlatformError
from gridbot.findings import Finding
from gridbot.ratelimit import NO_LIMITS, SendLimits

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from gridbot.menu import CommandMenu


class WebAuth(Protocol):
    """A platform that tells a web page, silently, which of its users opened it (the
    Official Account's web authorisation, snsapi_base): the residents' page then knows the
    phone as that chat's person (:mod:`gridbot.residents.oauth`)."""

    #: the platform whose user ids it gives
    platform: str

    def wanted(self, user_agent: str) -> bool:
        """Whether a browser with this user agent can be asked (WeChat's own)."""
        ...

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """Where to send the browser; it comes back to ``redirect_uri?code=…&state=…``."""
        ...

    async def identify(self, code: str) -> str | None:
        """The user id the returned ``code`` stands for (``None``: refused, or spent).
        Raise :class:`gridbot.errors.PlatformError` when the platform cannot be asked."""
        ...


class Intake(Protocol):
    """Where an adapter hands what its platform delivered (the engine is behind it, in
    :class:`gridbot.engine.EngineIntake`; adapters never see it)."""

    async def handle(self, incoming: Incoming) -> Outcome:
        """Handle one message exactly once, and say what became of it: ``FAILED`` means
        nothing was kept and the platform must deliver it again (do not confirm it);
        anything else is done for the platform, a message set aside included. Messages
        handed in at the same time may be committed together; each outcome still comes
        only after its commit."""
        ...

    async def handle_many(self, incoming: Sequence[Incoming]) -> list[Outcome]:
        """Handle messages that arrived together in one commit (each one as
        :meth:`handle` would, and just as safe to confirm after): the outcomes, in
        order."""
        ...

    def now(self) -> datetime:
        """The engine's clock (to judge a signed callback's freshness, say)."""
        ...

    async def chat_moved(self, platform: str, old_chat_id: str, new_chat_id: str) -> None:
        """A chat changed its id (a Telegram group became a supergroup): keep its binding."""
        ...

    async def bind_groups(self, platform: str, groups: Mapping[str, str]) -> None:
        """Group chats that the configuration names (chat id → micro-grid code), for
        platforms where nobody can say ``/bind`` in the group (send-only robots): each
        is stored bound to its micro-grid, titled with its name; any other group chat
        of ``platform`` loses its binding, so notices stop going to a removed one."""
        ...

    async def group_owners(self, platform: str, owner_platform: str) -> list[str]:
        """Whose customer groups to list (:mod:`gridbot.customer_groups`): the user ids on
        ``owner_platform`` of every steward who linked an account there, and the owners
        of the groups of ``platform`` already known."""
        ...

    async def groups_seen(self, platform: str, groups: Sequence[GroupSeen],
                          rules: BindingRules, *,
                          complete_for: Sequence[str] | None = None) -> GroupCounts:
        """Customer groups the platform listed or told of: kept, and bound by ``rules``
        unless bound by hand. ``complete_for``: owners whose groups were all listed, so
        any other group of theirs is gone. What there is now."""
        ...

    async def group_dismissed(self, platform: str, chat_id: str) -> GroupCounts:
        """A customer group was dismissed: it loses its binding. What there is now."""
        ...


class Adapter(ABC):
    """One platform.

    Adapters turn whatever their platform delivers into :class:`~gridbot.domain.Incoming`
    and hand it to an :class:`Intake`; the engine never sees a platform type. Outgoing
    messages reach :meth:`send` only through the outbox.

    ``gridbot run`` drives every configured adapter through the same lifecycle:
    :meth:`open` (check credentials, learn ``bot_username``), the HTTP server starts
    with :meth:`routes` mounted, :meth:`start` (begin receiving), and on shutdown
    :meth:`stop` (stop receiving, finish what is being handled), a last outbox drain,
    then :meth:`close`. The defaults do nothing, for adapters that only send.
    """

    #: the platform name stored with accounts, chats and outbox rows
    name: str
    #: how this platform wants text; the engine escapes accordingly when rendering
    fmt: TextFormat = TextFormat.PLAIN
    #: the bot's own username, so ``/claim@OtherBot`` is left alone
    bot_username: str | None = None
    #: whether :meth:`send` shows a message's buttons; where not, messages say what to send
    buttons: bool = False
    #: what the platform lets a bot send (rates, parallel requests); the outbox keeps to it
    limits: SendLimits = NO_LIMITS
    #: whether the bot can write to a person unasked; a platform that only answers (the
    #: WeCom smart bot) keeps no private chat for anyone, and so never counts as reaching them
    writes_first: bool = True
    #: the platform whose user ids this one's are too, so nobody links twice
    same_users_as: str | None = None

    def hears(self, chat_id: str) -> bool:
        """Whether what people say in the chat reaches the bot. Where it does not (a
        send-only group robot, a WeCom app chat), nobody there is asked to reply 收到."""
        return True

    @abstractmethod
    async def send(self, message: Outgoing) -> str:
        """Deliver one message and return the platform's id for it.

        Raise :class:`gridbot.errors.PlatformError` on failure, ``permanent=True`` when a
        retry cannot help (the bot was removed, the user blocked it), with
        ``retry_after`` when the platform asked to wait, ``outage=True`` when it could not
        be reached at all (no connection: nothing left) and ``uncertain=True`` when the
        request left but its answer did not come in time (it may have arrived).
        """

    async def open(self) -> None:  # noqa: B027 (optional hook)
        """Connect and check credentials; raise ConfigError or PlatformError if unusable."""

    async def announce_commands(self, menus: Sequence[CommandMenu]) -> None:  # noqa: B027
        """Give the platform's own command menu these lists (Telegram's "/" menu), right
        after :meth:`open`. Platforms without such a menu ignore it; a platform that
        refuses it must not stop the start (log it: the commands work regardless)."""

    def routes(self, intake: Intake) -> list[BaseRoute]:
        """HTTP routes this platform needs on the project's server (webhooks, callbacks)."""
        return []

    async def start(self, intake: Intake) -> None:  # noqa: B027 (optional hook)
        """Begin receiving (polling, or registering a webhook)."""

    def receive_duty(self) -> str | None:
        """A name if only one process at a time may receive for this account (long
        polling): several ``gridbot run`` on one database then take turns, see
        :mod:`gridbot.singleton_duties`. ``None`` (the default) if every process can receive."""
        return None

    async def stop(self) -> None:  # noqa: B027 (optional hook)
        """Stop receiving and let the message being handled finish."""

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections; nothing is sent after this."""

    async def diagnose(self, now: datetime) -> list[Finding]:
        """For ``gridbot doctor``, on an adapter not opened: are the credentials right
        and the platform reachable (and, where the platform says, the webhook and the
        clock)? By default: can it open."""
        try:
            await self.open()
        except ConfigError as exc:
            return [Finding(check="platform_credentials", ok=False,
                            params={"platform": self.name, "message": str(exc)})]
        except PlatformError as exc:
            return [Finding(check="platform_unreachable", ok=False,
                            params={"platform": self.name, "message": exc.reason})]
        finally:
            with contextlib.suppress(Exception):
                await self.close()
        return [Finding(check="platform_ok", ok=True,
                        params={"platform": self.name, "bot": self.bot_username or ""})]

    def health(self) -> dict[str, Any]:
        """A small JSON-able status for ``/healthz``."""
        return {}

    #: the path of the callback the platform calls on this server, if it calls one
    #: (``gridbot doctor`` asks for it at the public address)
    callback_path: str | None = None

    def web_auth(self) -> WebAuth | None:
        """How this platform identifies its users to a web page, if it can (and is set
        up to); ``None`` for most."""
        return None

    async def download(self, attachment: Attachment) -> bytes | None:
        """The bytes of a piece of evidence this platform keeps (a photo, a voice note),
        for the office console to show; ``None`` where the platform cannot give them.
        Raise :class:`gridbot.errors.PlatformError` when it could not be fetched now."""
        return None
