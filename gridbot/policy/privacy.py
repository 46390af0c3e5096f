"""What may reach a group: no phone number and no address, whatever a template says.

The templates already keep private words out of groups (a case's history there says what
happened and when, never what was said in private). This is the net under them, applied
by the engine to every message it queues for a group, so that the next template cannot
forget: phone-number-shaped text (Chinese mobiles with or without ``+86``, spaces or
dashes; landlines with their area code) and the configured phone and address of everyone
the message is about are masked. A mobile keeps its first three and last four digits
(``137****0301``), as Chinese apps print them, so people still tell numbers apart.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from markupsafe import escape

from gridbot.domain import Person

_SEP = r"[ \t\u3000\-\u2010-\u2015\uff0d.·]?"
#: a Chinese mobile: 1[3-9]x xxxx xxxx, with or without +86 / 0086 / 86 in front
_MOBILE = re.compile(
    r"(?<![0-9０-９])(?:(?:[+＋]|00|００)?\s?[8８][6６]" + _SEP + r"\s?)?"
    r"([1１][3-9３-９][0-9０-９])" + _SEP + r"([0-9０-９]{4})" + _SEP
    + r"([0-9０-９]{4})(?![0-9０-９])"
)
#: a landline with its area code: 0512-6666 8888, (0512)66668888, 010-62345678
_LANDLINE = re.compile(
    r"(?<![0-9０-９])[(（]?([0０][1-9１-９][0-9０-９]{1,2})[)）]?" + _SEP
    + r"([2-9２-９][0-9０-９]{2,3})" + _SEP + r"([0-9０-９]{4})(?![0-9０-９])"
)
#: a mobile cut short in a list ("137-0000-03…"): still most of a number
_MOBILE_CUT = re.compile(
    r"(?<![0-9０-９])([1１][3-9３-９][0-9０-９])" + _SEP + r"[0-9０-９]{4}" + _SEP
    + r"[0-9０-９]{0,3}…"
)
#: an address's leading estate name ("幸福里") may be left out when people write it:
#: "3幢201" is still her address
_ESTATE = re.compile(r"^\D+")


def mask_phones(text: str) -> str:
    """Every phone-number-shaped run of ``text`` masked: ``137****0301``, ``0512-****8888``."""
    text = _MOBILE.sub(lambda m: f"{_ascii(m[1])}****{_ascii(m[3])}", text)
    text = _MOBILE_CUT.sub(lambda m: f"{_ascii(m[1])}****…", text)
    return _LANDLINE.sub(lambda m: f"{_ascii(m[1])}-****{_ascii(m[3])}", text)


def for_group(text: str, people: Iterable[Person], *, address_mask: str,
              escaped: bool = False) -> str:
    """``text`` as a group may see it: the configured phones and addresses of ``people``
    replaced (an address by ``address_mask``), then any phone-shaped text masked.

    ``escaped``: the text is HTML in which people's words were escaped as the templates
    escape them (Telegram), so an address with ``&``, ``<`` or a quote in it is looked for
    as it appears there.
    """
    for person in people:
        phone, addresses = _patterns(person.phone, person.address, escaped)
        if phone is not None:
            text = phone.sub(lambda m: _masked(m[0]), text)
        for address in addresses:
            text = address.sub(address_mask, text)
    return mask_phones(text)


@lru_cache(maxsize=1024)
def _patterns(phone: str, address: str, escaped: bool
              ) -> tuple[re.Pattern[str] | None, tuple[re.Pattern[str], ...]]:
    """One person's configured phone (its digits, however separated, half- or full-width)
    and address (any spacing, with or without the estate name in front), as patterns."""
    digits = _ascii(re.sub(r"\D", "", unicodedata.normalize("NFKC", phone)))
    phone_pattern = None
    if len(digits) >= 5:
        # Hers even when run into other digits: no boundaries asked for.
        phone_pattern = re.compile(r"[\s\-.·－]{0,2}".join(
            f"[{d}{chr(ord(d) + 0xFEE0)}]" for d in digits))
    compact = re.sub(r"\s+", "", address)
    # Too short to say where someone lives ("3幢"), and masking it would eat the
    # neighbourhood's ordinary talk: left alone.
    variants = {compact} if len(compact) >= 4 else set()
    tail = _ESTATE.sub("", compact)
    if tail != compact and len(tail) >= 4 and sum(c.isdigit() for c in tail) >= 2:
        variants.add(tail)
    addresses = tuple(
        re.compile(r"\s*".join(re.escape(str(escape(c)) if escaped else c)
                               for c in variant))
        for variant in sorted(variants, key=len, reverse=True))
    return phone_pattern, addresses


def _masked(phone: str) -> str:
    """A configured number as shown in a group: a mobile's first three and last four
    digits, anything shorter not at all."""
    digits = _ascii(re.sub(r"\D", "", phone))
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 11 else "****"


def _ascii(digits: str) -> str:
    return unicodedata.normalize("NFKC", digits)
