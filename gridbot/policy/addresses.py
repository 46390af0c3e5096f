"""Reading a building, a unit (单元, entrance) and a room out of a resident's words.

People write an address in many ways: ``3幢2单元201``, ``3栋``, ``5号楼``, ``7#楼``,
``三幢``, ``３幢２单元２０１室``, ``A座1203``, ``幸福里3-201``, ``3-2-201室``. The reader
wants a marker it can trust (幢, 栋, 座, 号楼, ``#``, 单元, 室), or for the dash forms an
estate name in front (``幸福里``), 住 or 室, so that a phone number (138-0000-0101), a date
(11-23, 12月3号), a time (10:30) or an amount (300元, 3-500块) is never taken for an
address; a number that runs into other digits, or that a date or an amount ends, is no
building. Each part is kept as its key: the building's number or letter (``3``,
``A``, ``12``), the unit's number and the room's digits, compared across the ways of
writing (the household ledger's ``3幢`` / ``2单元`` / ``201`` read the same way).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
_CN = "零〇一二两三四五六七八九十百"
#: a building's number: digits, Chinese numerals, a letter (A座) or digits and a letter
_BNUM = rf"(?:[0-9]{{1,3}}[A-Za-z]?|[{_CN}]{{1,4}}|[A-Za-z])"
_UNUM = rf"(?:[0-9]{{1,2}}|[{_CN}]{{1,3}})"
#: what a room number may not run into: more digits, or the unit of an amount, a count
#: or a time ("201元", "300人", "120平")
_NOT_AFTER_ROOM = r"(?![0-9.:：%元块圆万千百米平人个天年月日点分秒次岁斤公里倍度吨件户])"
#: what a building's number may not follow: digits, a date or an amount, "这一栋"
_NOT_BEFORE = rf"(?<![0-9A-Za-z.:：\-/月年第这那每哪整同共约¥￥${_CN}])"
_BUILDING_MARK = r"(?:号楼|号幢|号栋|幢|栋|座|#楼|#)"
_ROOM_MARK = r"(?:室|房|号(?!楼))"
_MARKED = re.compile(
    _NOT_BEFORE + rf"(?P<b>{_BNUM})\s*(?P<m>{_BUILDING_MARK})"
    rf"(?:\s*[-—－]?\s*(?P<u>{_UNUM})\s*(?:单元|门洞|[-—－](?=\s*[1-9][0-9]{{2,3}})))?"
    rf"(?:\s*[-—－]?\s*(?P<r>[1-9][0-9]{{2,3}}){_NOT_AFTER_ROOM}\s*{_ROOM_MARK}?)?")
#: "2单元301" without a building: the unit and room only
_UNIT_ONLY = re.compile(
    _NOT_BEFORE + rf"(?P<u>{_UNUM})\s*单元"
    rf"(?:\s*[-—－]?\s*(?P<r>[1-9][0-9]{{2,3}}){_NOT_AFTER_ROOM}\s*{_ROOM_MARK}?)?")
#: an estate's name in front of a dash form: 幸福里, 桂花园, 阳光小区, 新村, 公寓…
_ESTATE = (r"(?P<estate>[\u4e00-\u9fff]{1,8}?(?:小区|花园|新村|家园|公寓|苑|园|里|村|城|府|庭|湾|"
           r"坊|居|广场|大厦|住|家住|住在))")
_DASH = re.compile(
    r"(?:" + _ESTATE + r"\s*)?(?<![0-9.:：\-/])(?P<b>[0-9]{1,3}[A-Za-z]?)\s*[-—－]\s*"
    r"(?:(?P<u>[0-9]{1,2})\s*[-—－]\s*)?(?P<r>[1-9][0-9]{2,3})(?![0-9\-—－/.:：])"
    r"(?P<after>\s*(?:室|房))?" + _NOT_AFTER_ROOM)


@dataclass(frozen=True, kw_only=True)
class Address:
    """Where a report says it is. Empty parts were not said."""

    building: str = ""
    unit: str = ""
    room: str = ""
    #: the estate's name when it was written (幸福里)
    estate: str = ""

    def __bool__(self) -> bool:
        return bool(self.building or self.room)


def _normal(text: str) -> str:
    """Full-width digits and letters as ASCII, character by character (same length)."""
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKC", ch)
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


def chinese_number(text: str) -> int | None:
    """一 → 1, 十二 → 12, 二十一 → 21, 一百零五 → 105; ``None`` if not a plain numeral."""
    if not text or any(c not in _CN for c in text):
        return None
    if all(c in _CN_DIGITS for c in text):  # 一二 written digit by digit
        return int("".join(str(_CN_DIGITS[c]) for c in text))
    total, current = 0, 0
    for c in text:
        if c in _CN_DIGITS:
            current = _CN_DIGITS[c]
        elif c == "十":
            total += (current or 1) * 10
            current = 0
        elif c == "百":
            total += (current or 1) * 100
            current = 0
    return total + current


def _key(part: str | None) -> str:
    """A number part as its key: digits without leading zeros, letters upper-case."""
    if not part:
        return ""
    part = _normal(part).strip()
    number = chinese_number(part)
    if number is not None:
        return str(number)
    if part[:-1].isdigit() and part[-1:].isalpha():
        return str(int(part[:-1])) + part[-1].upper()
    if part.isdigit():
        return str(int(part))
    return part.upper()


def read_address(text: str) -> Address | None:
    """The first address written in ``text``, or ``None``."""
    found = find_addresses(text)
    return found[0] if found else None


def find_addresses(text: str) -> list[Address]:
    """Every address written in ``text``, in order."""
    norm = _normal(text)
    hits: list[tuple[int, int, Address]] = []
    for match in _MARKED.finditer(norm):
        building = _key(match["b"])
        if building in ("", "0") or len(building) > 4 or (
                match["m"] == "#" and not building[0].isdigit()):
            continue  # "C#" is a language, not building C
        hits.append((match.start(), match.end(), Address(
            building=building, unit=_key(match["u"]), room=_key(match["r"]))))
    for match in _DASH.finditer(norm):
        estate = match["estate"] or ""
        if not estate and not match["after"]:
            continue
        if any(s < match.end() and match.start("b") < e for s, e, _ in hits):
            continue
        place = "" if estate.endswith("住") or estate.endswith("住在") else estate
        hits.append((match.start("b"), match.end(), Address(
            building=_key(match["b"]), unit=_key(match["u"]), room=_key(match["r"]),
            estate=place)))
    if not hits:
        for match in _UNIT_ONLY.finditer(norm):
            if match["r"]:
                hits.append((match.start(), match.end(), Address(
                    unit=_key(match["u"]), room=_key(match["r"]))))
    hits.sort(key=lambda hit: hit[0])
    return [address for _, _, address in hits]


def strip_addresses(text: str) -> str:
    """``text`` without its addresses (and without any digits), for comparing two reports'
    words: "3幢楼道灯坏了" and "5幢楼道灯坏了" say the same about different places."""
    norm = _normal(text)
    norm = _MARKED.sub(" ", norm)
    norm = _DASH.sub(" ", norm)
    return re.sub(r"[0-9]+", " ", norm)


# -- the household ledger -------------------------------------------------------------------


class LedgerLine(Protocol):
    """A line of the household ledger as the reader needs it (:class:`Household`)."""

    @property
    def building(self) -> str: ...
    @property
    def entrance(self) -> str: ...
    @property
    def room(self) -> str: ...


L = TypeVar("L", bound=LedgerLine)


def building_key(written: str) -> str:
    """The ledger's (or the configuration's) building as a key: 3幢, 3栋, 3号楼, 三幢, 3 → 3."""
    text = _normal(written).strip()
    match = re.fullmatch(rf"(?:.*?)({_BNUM})\s*{_BUILDING_MARK}?", text)
    return _key(match[1]) if match else _key(text)


def unit_key(written: str) -> str:
    """The ledger's unit as a key: 2单元, 二单元, 2 → 2; "" where buildings have one."""
    text = _normal(written).strip()
    match = re.fullmatch(rf"({_UNUM})\s*(?:单元|门洞)?", text)
    return _key(match[1]) if match else _key(text)


def room_key(written: str) -> str:
    text = _normal(written).strip()
    match = re.fullmatch(r"0*([0-9]+)\s*(?:室|房|号)?", text)
    return match[1] if match else text


def match_household(address: Address, households: Iterable[L]) -> L | None:
    """The one household of the ledger the address names (building and room, and the
    unit when said), or ``None`` if none or several fit."""
    if not address.building or not address.room:
        return None
    found = [h for h in households
             if building_key(h.building) == address.building
             and room_key(h.room) == address.room
             and (not address.unit or unit_key(h.entrance) == address.unit)]
    return found[0] if len(found) == 1 else None


def microgrid_of_building(building: str, owners: Sequence[tuple[str, str]]) -> str | None:
    """The micro-grid listing ``building`` among ``owners`` (micro-grid, building key), if
    exactly one does."""
    found = {microgrid for microgrid, key in owners if key == building}
    return found.pop() if len(found) == 1 else None
