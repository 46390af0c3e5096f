"""工单 Case: the whole timeline (who, when, what), evidence, the deadlines and the ladder so
far, and a form for each thing this person may do to it, which the engine carries out as
the same command said in chat."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from starlette.responses import RedirectResponse, Response

from gridbot.console.app import Page
from gridbot.domain import Attachment, Case, CaseEvent, Person
from gridbot.errors import PlatformError
from gridbot.policy.permissions import can_handle_case, can_see_case, may_use
from gridbot.store.base import Transaction


@dataclass(frozen=True, kw_only=True)
class Action:
    """One thing a page can do to a case: the chat command it says, and what it asks for
    (``fields``: name -> kind, each filled into the command in order)."""

    name: str
    command: str
    fields: tuple[tuple[str, str], ...] = ()
    #: only while the case is open
    open_only: bool = True

    def text(self, number: int, values: dict[str, str]) -> str:
        """The chat command this action says."""
        words = [f"/{self.command}", str(number)]
        words += [" ".join(values.get(name, "").split()) for name, _ in self.fields]
        return " ".join(w for w in words if w)


#: every action the console offers on a case, in the order the page shows them
ACTIONS: tuple[Action, ...] = (
    Action(name="claim", command="claim"),
    Action(name="note", command="note", fields=(("text", "text"),)),
    Action(name="done", command="done", fields=(("text", "text"),)),
    Action(name="transfer", command="transfer", fields=(("to", "person"), ("text", "line"))),
    Action(name="escalate", command="escalate", fields=(("text", "line"),)),
    Action(name="extend", command="extend", fields=(("duration", "duration"),
                                                     ("text", "line"))),
    Action(name="approve", command="approve"),
    Action(name="refuse", command="refuse", fields=(("text", "line"),)),
    Action(name="return", command="return", fields=(("text", "line"),)),
    Action(name="reroute", command="reroute", fields=(("microgrid", "microgrid"),
                                                       ("text", "line"))),
)
log = logging.getLogger(__name__)
ACTION_NAMES = {action.name: action for action in ACTIONS}


async def allowed_actions(tx: Transaction, person: Person, case: Case,
                          commands: Any) -> list[Action]:
    """What the page offers this person on this case: the commands their role may use,
    on a case they may act on. (The engine decides in the end, exactly as in chat: a form
    shown here can still be refused, and the page shows the refusal.)"""
    handles = await can_handle_case(tx, person, case)
    offered = []
    for action in ACTIONS:
        if not may_use(person, commands.spec(action.command)):
            continue
        if action.open_only and not case.status.is_open:
            continue
        if action.name in ("approve", "refuse") and case.extension is None:
            continue
        if not handles and action.name not in ("approve", "refuse", "reroute"):
            continue
        offered.append(action)
    return offered


@dataclass(frozen=True, kw_only=True)
class Line:
    """One event of the timeline as the page shows it."""

    event: CaseEvent
    actor: str
    evidence: tuple[Attachment, ...]
    #: whom the case went to ("assigned"): the actor is who caused it, not who got it
    to: str = ""


async def case_page(page: Page) -> Response:
    number = page.request.path_params["number"]
    case = await page.tx.case(number)
    if case is None or not await can_see_case(page.tx, page.person, case):
        return page.render("missing.html.j2", status=404, number=number)
    names: dict[str, str] = {}
    # Reported so that not even its handler knows who asked: the console is the handler's
    # view, so the reporter is nobody's business here either.
    hidden = case.anonymous == "everyone" and case.reporter_id != page.person.id

    async def name(person_id: str | None) -> str:
        if not person_id:
            return ""
        if hidden and person_id == case.reporter_id:
            return str(page.console.views.words(page.locale)["anonymous_reporter"])
        if person_id not in names:
            someone = await page.tx.person(person_id)
            names[person_id] = someone.name if someone else person_id
        return names[person_id]

    lines = []
    for event in await page.tx.events(case.number):
        evidence = tuple(a for a in (Attachment.from_data(d)
                                     for d in event.data.get("attachments", ())) if a)
        lines.append(Line(event=event, actor=await name(event.actor_id), evidence=evidence,
                          to=await name(event.data.get("assignee"))))
    ladder = [line for line in lines if line.event.kind in ("escalated", "escalate")]
    actions = await allowed_actions(page.tx, page.person, case, page.console.engine.commands)
    said = await page.console.answers(page)
    errand = await page.tx.errand(case.number)
    if errand is not None:
        # The ledger's tags (独居老人…) are for whoever does the errand.
        doing = page.person.id in (errand.volunteer_id, case.assignee_id)
        errand_view = {"errand": errand, "volunteer": await name(errand.volunteer_id),
                       "advanced_by": await name(errand.advanced_by),
                       "tags": errand.tags if doing else ()}
    else:
        errand_view = None
    followers = len(await page.tx.watchers(case.number))
    return page.render("case.html.j2", case=case, lines=lines, ladder=ladder, actions=actions,
                       reporter=await name(case.reporter_id),
                       assignee=await name(case.assignee_id), said=said,
                       microgrids=page.console.config.microgrids, errand=errand_view,
                       followers=followers)


async def act(page: Page) -> Response:
    """An action's form: said to the engine as the chat command; back to the case."""
    number = page.request.path_params["number"]
    action = ACTION_NAMES.get(str(page.form.get("action") or ""))
    back = f"{page.console.path}/cases/{number}"
    if action is None:
        return RedirectResponse(back, status_code=303)
    values = {name: str(page.form.get(name) or "") for name, _ in action.fields}
    said = await page.console.say(page.person, action.text(number, values))
    return RedirectResponse(f"{back}?said={said.message_id}", status_code=303)


#: how evidence is served, by its kind (Telegram's photos are JPEG, its voice notes Ogg)
EVIDENCE_TYPES = {"photo": "image/jpeg", "voice": "audio/ogg"}


async def evidence(page: Page) -> Response:
    """One piece of a case's evidence, fetched from the platform that keeps it, for the
    case page to show inline (only to whoever may see the case)."""
    number = page.request.path_params["number"]
    event_id, index = page.request.path_params["event"], page.request.path_params["index"]
    case = await page.tx.case(number)
    if case is None or not await can_see_case(page.tx, page.person, case):
        return Response(status_code=404)
    events = await page.tx.events(case.number)  # the event by its place in the timeline
    found = events[event_id] if 0 <= event_id < len(events) else None
    kept = found.data.get("attachments", ()) if found is not None else ()
    attachment = Attachment.from_data(kept[index]) if 0 <= index < len(kept) else None
    if attachment is None:
        return Response(status_code=404)
    data = attachment.content()
    mime = attachment.mime if data is not None else EVIDENCE_TYPES.get(
        attachment.kind.value, "application/octet-stream")
    if data is None:
        adapter = page.console.adapters.get(attachment.platform)
        try:
            data = await adapter.download(attachment) if adapter is not None else None
        except PlatformError as exc:
            log.warning("console: evidence of #%s could not be fetched from %s: %s",
                        number, attachment.platform, exc)
            return Response(status_code=502)
    if data is None:
        return Response(status_code=404)
    headers = {"cache-control": "private, max-age=3600"}
    if not mime.startswith(("image/", "audio/")):
        headers["content-disposition"] = "attachment"
    return Response(data, media_type=mime, headers=headers)


ROUTES = [
    ("/cases/{number:int}", case_page, ("GET",), False),
    ("/cases/{number:int}/evidence/{event:int}/{index:int}", evidence, ("GET",), False),
    ("/cases/{number:int}/act", act, ("POST",), True),
]
