"""Errand rules (帮办代办): who it is for and what is to be done, as people ask it; its
kind; money as people write it; the household ledger line it is for.

``帮3幢王奶奶买降压药`` (for 3幢王奶奶, buy blood-pressure medicine), ``代办 王大爷
陪同去医院复查`` (the first word names the beneficiary), ``代办 买降压药`` (for the
person asking). :func:`errand_kind` sorts an errand into one of :data:`KINDS` for the
figures; the names live in the templates (``_errand.j2``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from gridbot.domain import Priority
from gridbot.store.base import Household

#: words that mean "for myself"
SELF_WORDS = frozenset({"本人", "我", "自己", "me", "myself", "self"})
#: an errand's kinds, in the order the figures list them, with the words that put an
#: errand there (the first kind with a hit wins; none: "other")
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("medicine", ("药", "medicine", "pharmacy")),
    ("hospital", ("医院", "就医", "看病", "复查", "陪诊", "担架", "送医", "接回", "hospital",
                  "doctor")),
    ("paperwork", ("填", "表", "手续", "办理", "证", "社保", "医保", "缴费", "申请", "补贴",
                   "认证", "form", "paperwork")),
    ("shopping", ("买", "代购", "菜", "米", "油", "shopping", "groceries", "buy")),
    ("repair", ("修", "换灯", "安装", "repair", "fix")),
    ("other", ()),
)
#: verbs an errand starts with, where "帮王奶奶买药" splits into who and what
_VERBS = ("买", "取", "配", "送", "陪", "办", "填", "缴", "交", "领", "预约", "挂号", "搬",
          "抬", "接", "修", "代", "拿", "寄", "充", "申请", "打扫")
_FOR = re.compile(r"^(?:请|麻烦)?(?:帮|替|给|为)(?:忙)?")
#: an amount of money: 35, 35.5, ¥35, 35元, 35块5 is not read (say 35.5)
_MONEY = re.compile(r"^[¥￥]?\s*(?P<n>\d{1,6}(?:\.\d{1,2})?)\s*(?:元|块|rmb|yuan|cny)?$",
                    re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class Request:
    """An errand as asked: for whom (``""``: the person asking) and what."""

    beneficiary: str
    task: str

    @property
    def for_self(self) -> bool:
        return not self.beneficiary


def read_request(text: str) -> Request:
    """Who and what, from the words after 代办 (see the module's docstring)."""
    text = text.strip()
    rest, head = text, _FOR.match(text)
    while (found := _FOR.match(rest)) is not None and found.end() > 0:
        rest = rest[found.end():]
    if head:
        cut = min((i for i in (rest.find(v) for v in _VERBS) if i > 0), default=-1)
        if cut > 0:
            return _request(rest[:cut], rest[cut:])
    first, _, rest = text.partition(" ")
    if rest.strip() and (first.lower() in SELF_WORDS or len(first) <= 12):
        return _request(first, rest)
    return Request(beneficiary="", task=text)


def _request(who: str, what: str) -> Request:
    who = who.strip(" ，,:：")
    return Request(beneficiary="" if who.lower() in SELF_WORDS else who, task=what.strip())


def errand_kind(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).lower()
    for kind, words in KINDS:
        if any(word in folded for word in words):
            return kind
    return "other"


def read_money(text: str) -> int | None:
    """Fen (分) from "35", "35.5", "¥35", "35元"; ``None`` if it is no amount."""
    match = _MONEY.match(unicodedata.normalize("NFKC", text).strip())
    if not match:
        return None
    try:
        cents = int(Decimal(match["n"]) * 100)
    except InvalidOperation:
        return None
    return cents if cents > 0 else None


def household_key(household: Household) -> str:
    return "/".join((household.building, household.entrance, household.room))


def match_household(words: str, households: Iterable[Household]) -> Household | None:
    """The ledger line the words name: its head's name in them (with its building, if
    the words name one), only when exactly one line fits."""
    folded = unicodedata.normalize("NFKC", words)
    found = [h for h in households if len(h.head) >= 2 and h.head in folded]
    named = [h for h in found if h.building and h.building in folded]
    if len(named) == 1:
        return named[0]
    return found[0] if len(found) == 1 else None


def raised(priority: Priority) -> Priority:
    """One step up: a low errand becomes normal, a normal one urgent."""
    return {Priority.LOW: Priority.NORMAL}.get(priority, Priority.URGENT)
