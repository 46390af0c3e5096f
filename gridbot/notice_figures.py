"""The notices of a period in the monthly report: each notice that went out, its groups,
and its 收到 in chat beside its 收到 on its page (:mod:`gridbot.residents.notice`).

Counted for the report's scope only: a notice to the whole subdistrict counts, in a
community's report, that community's groups and the taps through its micro-grids' links.
Chat's 收到 is one per person per group (as ``/notice N`` counts them); a page's is one
per person per notice. The two are shown side by side, never added, since within one
scope they are two ways of saying the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gridbot.store.base import Transaction


@dataclass(frozen=True, kw_only=True)
class NoticeRow:
    number: int
    sent_at: datetime
    text: str
    scope: str
    #: of the notice's micro-grids, those in the report's scope
    microgrids: int
    #: the groups it went to there
    groups: int
    #: people who said 收到 in those groups (per group)
    chat_acks: int
    #: people who tapped 收到 on its page through those micro-grids' links
    page_acks: int


@dataclass(frozen=True, kw_only=True)
class NoticeFigures:
    rows: tuple[NoticeRow, ...] = ()

    @property
    def notices(self) -> int:
        return len(self.rows)

    @property
    def groups(self) -> int:
        return sum(r.groups for r in self.rows)

    @property
    def chat_acks(self) -> int:
        return sum(r.chat_acks for r in self.rows)

    @property
    def page_acks(self) -> int:
        return sum(r.page_acks for r in self.rows)


async def load_notice_figures(tx: Transaction, microgrids: Sequence[str], start: datetime,
                              end: datetime) -> NoticeFigures:
    """The notices that went out in [start, end) to any of ``microgrids``."""
    wanted = set(microgrids)
    rows = []
    for notice in await tx.notices_sent(start, end):
        mine = wanted.intersection(notice.microgrids)
        if not mine:
            continue
        deliveries = [d for d in await tx.deliveries(notice.id) if d.microgrid in mine]
        pages = await tx.page_ack_counts(notice.id)
        rows.append(NoticeRow(
            number=notice.id, sent_at=notice.send_at, text=notice.text, scope=notice.scope,
            microgrids=len(mine), groups=len(deliveries),
            chat_acks=sum(d.acks for d in deliveries),
            page_acks=sum(n for code, n in pages.items() if code in mine)))
    return NoticeFigures(rows=tuple(rows))
