"""通知 A notice's page: its text, who sent it and when, and a big 收到 button, for
residents of ordinary WeChat groups, where no bot hears anyone say 收到.

The copy of a notice a steward forwards into such a group ends with this page under the
micro-grid's link (:func:`gridbot.notices.start`), so a tap is counted for that
micro-grid. A tap counts once per person (the phone, or the Official Account's openid it
was recognised by) per notice, whichever micro-grid's link it came through; a second one
counts nothing and says so. Tapping makes the phone a person (as a report does), so the
page shows "已收到" to the same phone from then on.

Page taps are kept apart from chat's 收到 (``notice_page_acks`` beside ``notice_acks``):
the figures show both, and where they add them up a person who did both counts once
(:attr:`gridbot.domain.DeliveryCounts.people`).
"""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from gridbot.domain import Notice, NoticeStatus
from gridbot.notices import page_suffix
from gridbot.residents.app import Visit, VisitRoute
from gridbot.store.base import Transaction

#: what a page shows: a notice that has gone out (a scheduled one is not public yet)
SHOWN = (NoticeStatus.SENDING, NoticeStatus.DONE)


async def _notice(visit: Visit, tx: Transaction) -> Notice | None:
    """The notice of the path, if it went to the link's micro-grid and has gone out."""
    notice = await tx.notice(int(visit.request.path_params["notice"]))
    if notice is None or notice.status not in SHOWN or visit.microgrid not in notice.microgrids:
        return None
    return notice


async def _render(visit: Visit, tx: Transaction, notice: Notice, *, status: int = 200,
                  error: str = "") -> Response:
    author = await tx.person(notice.author_id)
    person = visit.resident.person
    acked = person is not None and await tx.acknowledged_on_page(notice.id, person.id)
    return visit.render(
        "notice.html.j2", status=status, notice=notice, acked=acked, error=error,
        office=author.unit if author else visit.residents.config.subdistrict.code,
        action=visit.url(page_suffix(notice.id)))


def _missing(visit: Visit) -> Response:
    return visit.render("notice_missing.html.j2", status=404)


async def notice_page(visit: Visit) -> Response:
    notice = await _notice(visit, visit.tx)
    if notice is None:
        return _missing(visit)
    return await _render(visit, visit.tx, notice)


async def acknowledge(visit: Visit) -> Response:
    """收到: counted once for this phone's person, tagged with the link's micro-grid."""
    tx = visit.tx
    notice = await _notice(visit, tx)
    if notice is None:
        return _missing(visit)
    person = visit.resident.person
    if person is None or not await tx.acknowledged_on_page(notice.id, person.id):
        # A flood of fresh phones from one address is held back; a phone that has tapped
        # already costs nothing (its second tap counts nothing anyway).
        if not visit.residents.acks.allow(visit.address):
            return await _render(visit, tx, notice, status=429, error="too_many")
        person = (await visit.enrol(tx)).person
        assert person is not None
        await tx.acknowledge_on_page(notice.id, person.id, visit.microgrid,
                                     visit.residents.console.now())
    # Post/redirect/get: a reload shows 已收到 and sends nothing again.
    return RedirectResponse(visit.url(page_suffix(notice.id)), status_code=303)


ROUTES: list[VisitRoute] = [
    ("/notice/{notice:int}", notice_page, ("GET",), False),
    ("/notice/{notice:int}", acknowledge, ("POST",), False),
]
