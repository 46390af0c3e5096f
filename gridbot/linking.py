"""One-time codes that link a platform account to a configured person.

Codes are shown once to the person (``gridbot link-code NAME``) and stored only as a
hash; they expire and work once.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from datetime import datetime, timedelta

from gridbot.domain import Person
from gridbot.errors import BadArguments, NotFound
from gridbot.store.base import Store

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
DEFAULT_TTL = timedelta(hours=72)


def normalise_code(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).upper() if ch.isalnum())


def hash_code(text: str) -> str:
    return hashlib.sha256(normalise_code(text).encode()).hexdigest()


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


async def issue_link_code(
    store: Store, name: str, now: datetime, ttl: timedelta = DEFAULT_TTL
) -> tuple[Person, str, datetime]:
    """Create a code for the configured person called (or with id) ``name``."""
    async with store.transaction() as tx:
        people = [p for p in await tx.people_named(name) if not p.auto]
        if not people:
            raise NotFound("error_no_person", name=name)
        if len(people) > 1:
            raise BadArguments("error_ambiguous_person", name=name, people=people)
        code = new_code()
        expires = now + ttl
        await tx.add_link_code(hash_code(code), people[0].id, now, expires)
    return people[0], code, expires
