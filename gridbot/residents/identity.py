"""Who a resident on the page is, without an account: their phone's cookie.

The first visit gets a long-lived cookie holding a random device id and its signature.
The device's account on the ``web`` platform (``user_id`` the keyed hash of the id, so a
copy of the database names no cookie) leads to a person: one the page made (``auto``,
named as the resident says, of the micro-grid whose link they used), or, where the
community's Official Account gave the page the resident's openid (snsapi_base), the same
person as their Official Account chat, so case news reaches them there too.

Every form of a device carries a token derived from its id, which another site cannot
know (CSRF); the cookie is SameSite=Lax and HttpOnly.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from gridbot.adapters.web import chat_id as web_chat_id
from gridbot.commands import clean_text
from gridbot.console import auth
from gridbot.domain import WEB_PLATFORM, Account, Person, Role
from gridbot.store.base import Transaction

#: the cookie naming the device
COOKIE = "gridbot_resident"
#: the longest name and phone kept as a resident gave them
NAME_CHARS, PHONE_CHARS, BUILDING_CHARS = 20, 20, 40


def _mac(key: bytes, purpose: str, value: str) -> str:
    return hmac.new(key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()


def new_device() -> str:
    return secrets.token_urlsafe(24)


def cookie_value(key: bytes, device: str) -> str:
    return auth.signed(key, "device", device)


def device_of(key: bytes, cookie: str | None) -> str | None:
    """The device id a cookie carries, if its signature is ours."""
    return auth.unsigned(key, "device", cookie, longest=120)


def csrf_token(key: bytes, device: str) -> str:
    return _mac(key, "csrf", device)[:40]


def csrf_ok(key: bytes, device: str, sent: object) -> bool:
    return isinstance(sent, str) and bool(sent) and hmac.compare_digest(
        sent, csrf_token(key, device))


def device_user(key: bytes, device: str) -> str:
    """The device's user id on the ``web`` platform."""
    return "d:" + _mac(key, "user", device)[:24]


@dataclass(frozen=True, kw_only=True)
class Resident:
    """A device, and the person behind it once they have done something."""

    device: str
    user_id: str
    person: Person | None

    @property
    def chat_id(self) -> str:
        """Where the bot's answers to this person's page wait (read back by the page)."""
        return web_chat_id(self.person.id if self.person else f"~{WEB_PLATFORM}:{self.user_id}")


async def find(tx: Transaction, key: bytes, device: str) -> Resident:
    user_id = device_user(key, device)
    account = await tx.account(WEB_PLATFORM, user_id)
    person = await tx.person(account.person_id) if account and account.person_id else None
    if person is not None and not person.active:
        person = None
    return Resident(device=device, user_id=user_id, person=person)


async def enrol(tx: Transaction, resident: Resident, *, microgrid: str, name: str,
                now: datetime, building: str | None = None, phone: str | None = None,
                locale: str = "") -> Resident:
    """The device's person, made on its first report, follow or 收到, and kept up to date
    with what they tell the page (``None``: unchanged). A person the page made belongs
    to the micro-grid whose link they used last, so their reports go there."""
    person = resident.person
    name = clean_text(name)[:NAME_CHARS].strip()
    if person is None:
        person = Person(id=f"~{WEB_PLATFORM}:{resident.user_id}", name=name or "",
                        role=Role.RESIDENT, unit=microgrid, auto=True, locale=locale)
    if person.auto:
        person = replace(
            person, unit=microgrid, name=name or person.name,
            address=clean_text(building)[:BUILDING_CHARS] if building is not None
            else person.address,
            phone=clean_text(phone)[:PHONE_CHARS] if phone is not None else person.phone)
        await tx.save_resident(person)
    await link(tx, resident.user_id, person, now)
    return replace(resident, person=person)


async def link(tx: Transaction, user_id: str, person: Person, now: datetime) -> None:
    """The device's web account leads to ``person``."""
    account = Account(platform=WEB_PLATFORM, user_id=user_id, display_name=person.name,
                      person_id=person.id, private_chat_id=web_chat_id(person.id))
    if await tx.account(WEB_PLATFORM, user_id) != account:
        await tx.save_account(account, now)


async def adopt(tx: Transaction, resident: Resident, platform: str, user_id: str, *,
                microgrid: str, now: datetime, name: str = "") -> Resident:
    """The device is the person of a chat account (the Official Account's openid from
    web authorisation): the page and that chat are one person from now on. An account the
    bot has not met becomes a resident of ``microgrid``; one whose device already made a
    person keeps that person (and their cases), which the chat account then joins."""
    account = await tx.account(platform, user_id)
    person = await tx.person(account.person_id) if account and account.person_id else None
    if person is None or not person.active:
        person = resident.person
        if person is None:
            person = Person(id=f"~{platform}:{user_id}", name=clean_text(name)[:NAME_CHARS],
                            role=Role.RESIDENT, unit=microgrid, auto=True)
            await tx.save_resident(person)
        await tx.save_account(Account(
            platform=platform, user_id=user_id,
            display_name=account.display_name if account else person.name,
            person_id=person.id,
            private_chat_id=account.private_chat_id if account and account.private_chat_id
            else user_id), now)
    await link(tx, resident.user_id, person, now)
    return replace(resident, person=person)
