"""Patrol visits (走访): what a steward's one line says, ``走访 3幢 5户 反映楼道堆物`` —
the buildings, the households (a count, or rooms named: ``3幢201``, ``3-201``) and what
was heard; and which household-ledger lines it names."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from gridbot.store.base import Household

_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9, "十": 10}
_BUILDING = re.compile(r"^(?P<b>\d{1,3})(?:幢|栋|号楼|#楼?|号)$")
_ROOM = re.compile(r"^(?P<b>\d{1,3})(?:幢|栋|号楼|#|-)(?:(?P<e>\d{1,2})单元)?(?P<r>\d{3,4})室?$")
_COUNT = re.compile(r"^(?P<n>\d{1,4}|[一二两三四五六七八九十])户$")


@dataclass(frozen=True, kw_only=True)
class Visit:
    buildings: tuple[str, ...]
    #: (building, entrance, room) named
    rooms: tuple[tuple[str, str, str], ...]
    #: the households said (``5户``), 0 when none was said
    count: int
    heard: str

    @property
    def households(self) -> int:
        return max(self.count, len(self.rooms))


def read_visit(text: str) -> Visit:
    """Buildings, rooms and a count at the start of the words, then what was heard."""
    buildings: list[str] = []
    rooms: list[tuple[str, str, str]] = []
    count = 0
    words = text.split()
    taken = 0
    for said in words:
        word = unicodedata.normalize("NFKC", said)
        if (match := _BUILDING.match(word)) is not None:
            buildings.append(f"{match['b']}幢")
        elif (match := _ROOM.match(word)) is not None:
            building = f"{match['b']}幢"
            entrance = f"{match['e']}单元" if match["e"] else ""
            rooms.append((building, entrance, match["r"]))
            if building not in buildings:
                buildings.append(building)
        elif (match := _COUNT.match(word)) is not None:
            n = match["n"]
            count = int(n) if n.isdigit() else _CN_DIGITS[n]
        else:
            break
        taken += 1
    heard = " ".join(words[taken:])
    return Visit(buildings=tuple(dict.fromkeys(buildings)), rooms=tuple(rooms), count=count,
                 heard=heard)


def ledger_lines(rooms: Iterable[tuple[str, str, str]],
                 households: Iterable[Household]) -> tuple[str, ...]:
    """The ledger lines ("building/entrance/room") of the rooms named; a room named
    without its entrance matches a line of any entrance, when only one fits."""
    lines = list(households)
    found: list[str] = []
    for building, entrance, room in rooms:
        fits = [h for h in lines if h.building == building and h.room == room
                and (not entrance or h.entrance == entrance)]
        if len(fits) == 1:
            h = fits[0]
            found.append("/".join((h.building, h.entrance, h.room)))
    return tuple(dict.fromkeys(found))
