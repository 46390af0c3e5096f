"""工单 A case as a resident sees it: its progress as the micro-grid's group sees it (what
happened and when, the steward's name; nobody's words, phone or address), and to its
reporter also what they reported, where, their photos, and the buttons that are theirs:
confirm it is fixed, say it is not, rate it. A neighbour may follow it (+1) and then gets
its news, shown here too; 我的报事 lists a phone's cases and those it follows.

Every button says the chat command to the engine (``/confirm 12``, ``/rate 12 5 …``), so
the same rules answer as in chat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.responses import RedirectResponse, Response

from gridbot.domain import (
    OPEN_STATUSES,
    WEB_PLATFORM,
    Attachment,
    Case,
    CaseEvent,
    Outgoing,
    Role,
    Status,
)
from gridbot.linking import add_code
from gridbot.residents.app import Visit
from gridbot.store.base import CaseQuery, Transaction

#: what a group's history shows of a case, in the words of ``words.events``
PUBLIC_KINDS = frozenset({
    "reported", "assigned", "claimed", "escalated", "transferred", "returned", "rerouted",
    "extended", "resolved", "confirmed", "reopened", "rated", "cancelled", "merged",
    "incident_joined", "closed_no_feedback", "followed",
})
#: how long a code linking a chat account to the phone works
LINK_CODE_TTL = timedelta(hours=1)
#: steps that hand the case to someone: the page names them, not who handed it
HANDED_ON = frozenset({"assigned", "transferred", "escalated", "rerouted", "returned"})
#: the actions a case page offers, and the command each says
COMMANDS = {"confirm": "/confirm", "reopen": "/reopen", "rate": "/rate",
            "follow": "/follow", "cancel": "/cancel"}


@dataclass(frozen=True, kw_only=True)
class Step:
    event: CaseEvent
    #: who did it, as a group may read it: staff by name, residents not at all
    actor: str


async def _viewer(visit: Visit, tx: Transaction, case: Case) -> tuple[bool, bool]:
    """Whether the phone's person reported the case, and whether they follow it."""
    person = visit.resident.person
    if person is None:
        return False, False
    if case.reporter_id == person.id:
        return True, False
    return False, any(w.person_id == person.id for w in await tx.watchers(case.number))


async def _case(visit: Visit, tx: Transaction) -> tuple[Case, bool, bool] | None:
    """The case of the path, if this link may show it: one of its micro-grid, or the
    phone's own (reported or followed) wherever it went."""
    case = await tx.case(int(visit.request.path_params["number"]))
    if case is None:
        return None
    own, following = await _viewer(visit, tx, case)
    if case.microgrid != visit.microgrid and not own and not following:
        return None
    return case, own, following


async def _steps(tx: Transaction, case: Case) -> list[Step]:
    names: dict[str, str] = {}

    async def staff(person_id: object) -> str:
        """A member of staff's name (a group reads it); nobody else's."""
        if not isinstance(person_id, str) or not person_id or person_id == case.reporter_id:
            return ""
        if person_id not in names:
            person = await tx.person(person_id)
            names[person_id] = person.name if person is not None \
                and person.role is not Role.RESIDENT else ""
        return names[person_id]

    steps = []
    for event in await tx.events(case.number):
        if event.kind not in PUBLIC_KINDS:
            continue
        # Handed on (assigned, transferred, escalated…): to whom; else who did it.
        whom = event.data.get("assignee") if event.kind in HANDED_ON else None
        steps.append(Step(event=event, actor=await staff(whom or event.actor_id)))
    return steps


async def _news(visit: Visit, tx: Transaction, case: Case) -> list[Outgoing]:
    """What the bot told this phone's person about the case (its news, kept for the page)."""
    if visit.resident.person is None:
        return []
    return [m for m in await tx.answers(WEB_PLATFORM, visit.resident.chat_id, "")
            if m.case_number == case.number][-20:]


async def case_page(visit: Visit) -> Response:
    tx = visit.tx
    found = await _case(visit, tx)
    if found is None:
        return visit.render("missing.html.j2", status=404)
    case, own, following = found
    assignee = await tx.person(case.assignee_id) if case.assignee_id else None
    photos = _photos(await tx.events(case.number)) if own else []
    followers = len(await tx.watchers(case.number))
    return visit.render(
        "case.html.j2", case=case, own=own, following=following, steps=await _steps(tx, case),
        assignee=assignee.name if assignee is not None else "", photos=photos,
        followers=followers, news=await _news(visit, tx, case),
        answers=await visit.answers(tx), reporter=visit.resident.person if own else None,
        may_follow=not own and not following and (case.status in OPEN_STATUSES
                                                  or case.status is Status.RESOLVED),
        case_url=visit.url(f"/case/{case.number}"))


def _photos(events: list[CaseEvent]) -> list[tuple[int, int]]:
    """The reporter's photos: (event index, attachment index), for the photo route."""
    found = []
    for i, event in enumerate(events):
        if event.kind in ("reported", "follow_up"):
            for j, data in enumerate(event.data.get("attachments", ())):
                attachment = Attachment.from_data(data)
                if attachment is not None and attachment.is_own:
                    found.append((i, j))
    return found


async def act(visit: Visit) -> Response:
    """A button of the case page: said to the engine as the chat command; back to it."""
    number = int(visit.request.path_params["number"])
    back = visit.url(f"/case/{number}")
    command = COMMANDS.get(visit.field("action", 20))
    if command is None:
        return RedirectResponse(back, status_code=303)
    async with visit.residents.store.transaction() as tx:
        if await _case(visit, tx) is None:
            return visit.render("missing.html.j2", status=404)
        if command == "/follow":
            await visit.enrol(tx)  # following makes a neighbour someone the bot can tell
    if visit.resident.person is None:
        return RedirectResponse(back, status_code=303)
    words = [command, str(number)]
    if command == "/rate":
        words += [visit.field("score", 2), " ".join(visit.field("comment", 500).split())]
    elif command == "/reopen":
        words.append(" ".join(visit.field("reason", 500).split()))
    said = await visit.say(" ".join(w for w in words if w))
    return RedirectResponse(f"{back}?said={said.message_id}", status_code=303)


async def photo(visit: Visit) -> Response:
    """One of the reporter's own photos, to the reporter only."""
    found = await _case(visit, visit.tx)
    if found is None or not found[1]:
        return Response(status_code=404)
    events = await visit.tx.events(found[0].number)
    i, j = visit.request.path_params["event"], visit.request.path_params["index"]
    kept = events[i].data.get("attachments", ()) if 0 <= i < len(events) else ()
    attachment = Attachment.from_data(kept[j]) if 0 <= j < len(kept) else None
    data = attachment.content() if attachment is not None else None
    if attachment is None or data is None or not attachment.mime.startswith("image/"):
        return Response(status_code=404)
    return Response(data, media_type=attachment.mime,
                    headers={"cache-control": "private, max-age=3600"})


async def mine(visit: Visit) -> Response:
    """我的报事: the phone's cases and those it follows, newest first, each linked under
    its own micro-grid's link."""
    return await _mine(visit, visit.tx)


async def link_chat(visit: Visit) -> Response:
    """A one-time code that makes a chat account (Telegram, the Official Account) the
    same person as this phone: ``认证 CODE`` there, and the chat's earlier reports join
    this phone's (the ``link`` command moves them), so nobody loses a case."""
    residents = visit.residents
    now = residents.console.now()
    async with residents.store.transaction() as tx:
        resident = await visit.enrol(tx)
        assert resident.person is not None
        code, expires = await add_code(tx, residents.engine.link_key, resident.person.id, now,
                                       LINK_CODE_TTL)
        return await _mine(visit, tx, code=code, expires=expires)


async def _mine(visit: Visit, tx: Transaction, **context: Any) -> Response:
    person = visit.resident.person
    reported: list[Case] = []
    followed: list[Case] = []
    if person is not None:
        reported = await tx.cases(CaseQuery(reporter_id=person.id, newest_first=True,
                                            limit=50))
        followed = [c for c in [await tx.case(n) for n in await tx.watched_cases(person.id)]
                    if c is not None]
    shown = [*reported, *followed]
    # Each case under its own micro-grid's current link, the links read at once.
    links = await visit.residents.link_urls(tx, sorted({c.microgrid for c in shown}))
    urls = {case.number: f"{links[case.microgrid]}/case/{case.number}" for case in shown}
    return visit.render("mine.html.j2", reported=reported, followed=followed, urls=urls,
                        **context)


ROUTES = [
    ("/case/{number:int}", case_page, ("GET",), False),
    ("/case/{number:int}", act, ("POST",), True),
    ("/case/{number:int}/photo/{event:int}/{index:int}", photo, ("GET",), False),
    ("/mine", mine, ("GET",), False),
    ("/mine", link_chat, ("POST",), True),
]
