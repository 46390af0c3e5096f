"""One-time codes that link a platform account to a configured person.

Codes are shown once to the person (``gridbot link-code NAME``) and stored only as a
keyed hash (HMAC-SHA256 with the per-install secret of :mod:`gridbot.keys`), so a copy
of the database does not give them away; they expire and work once. Codes issued before
the hash was keyed (a plain SHA-256) keep working until they expire.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from datetime import datetime, timedelta
from typing import Protocol

from gridbot.domain import Person
from gridbot.errors import BadArguments, NotFound
from gridbot.store.base import LinkCode, Store, Transaction


class Keyed(Protocol):
    """Where codes are kept, and the secret they are hashed with (an engine)."""

    store: Store

    @property
    def link_key(self) -> bytes: ...

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
DEFAULT_TTL = timedelta(hours=72)
#: how a keyed hash is told from the plain SHA-256 of older versions
KEYED = "hmac:"


def normalise_code(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).upper() if ch.isalnum())


def hash_code(text: str, key: bytes) -> str:
    digest = hmac.new(key, normalise_code(text).encode(), hashlib.sha256).hexdigest()
    return KEYED + digest


def legacy_hash(text: str) -> str:
    """How codes were stored before they were keyed; looked up until they expire."""
    return hashlib.sha256(normalise_code(text).encode()).hexdigest()


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


async def find_link_code(tx: Transaction, text: str, key: bytes) -> tuple[str, LinkCode] | None:
    """The stored code ``text`` names, with the hash it is stored under."""
    for stored in (hash_code(text, key), legacy_hash(text)):
        found = await tx.link_code(stored)
        if found is not None:
            return stored, found
    return None


async def issue_link_code(
    engine: Keyed, name: str, now: datetime, ttl: timedelta = DEFAULT_TTL
) -> tuple[Person, str, datetime]:
    """Create a code for the configured person called (or with id) ``name``."""
    async with engine.store.transaction() as tx:
        people = [p for p in await tx.people_named(name) if not p.auto]
        if not people:
            raise NotFound("error_no_person", name=name)
        if len(people) > 1:
            raise BadArguments("error_ambiguous_person", name=name, people=people)
        code, expires = await add_code(tx, engine.link_key, people[0].id, now, ttl)
    return people[0], code, expires


async def add_code(tx: Transaction, key: bytes, person_id: str, now: datetime,
                   ttl: timedelta = DEFAULT_TTL) -> tuple[str, datetime]:
    """A fresh code for the person, stored (as its keyed hash) in ``tx``: the code and when
    it expires."""
    code = new_code()
    expires = now + ttl
    await tx.add_link_code(hash_code(code, key), person_id, now, expires)
    return code, expires
