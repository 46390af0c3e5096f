"""报事 Report: the page a micro-grid's link or QR code opens. What happened, where (a
building and unit of the micro-grid's household ledger, or typed), up to three photos, a
phone for the steward only, and "do not show my name to neighbours"; below it the cases
the micro-grid has open, as its group sees them, to follow instead of reporting again.

Submitting says ``/report …`` to the engine as the resident, with the photos (cleaned,
:mod:`gridbot.residents.photos`) as the bot's own files, so the steward receives them on
any platform. Nothing typed is lost: a refusal shows the form again, filled in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from gridbot.commands import clean_text
from gridbot.domain import OPEN_STATUSES, Attachment, Priority
from gridbot.policy.addresses import read_address
from gridbot.policy.classification import classify
from gridbot.residents import photos
from gridbot.residents.app import MAX_PHOTOS, Visit
from gridbot.residents.identity import BUILDING_CHARS, NAME_CHARS, PHONE_CHARS
from gridbot.store.base import CaseQuery, Transaction

#: the micro-grid's open cases shown under the form
SHOWN = 20


@dataclass(frozen=True, kw_only=True)
class Typed:
    """What the resident typed, to show again when the form comes back."""

    text: str = ""
    building: str = ""
    unit: str = ""
    place: str = ""
    name: str = ""
    phone: str = ""
    anonymous: bool = False


def _buildings(households: list[Any]) -> dict[str, list[str]]:
    """Buildings of the ledger, in order, each with its units ("" where it has none)."""
    found: dict[str, set[str]] = {}
    for household in households:
        if household.building:
            found.setdefault(household.building, set()).add(household.entrance)
    return {b: sorted(u for u in found[b] if u) for b in sorted(found, key=_natural)}


def _natural(text: str) -> tuple[int, str]:
    digits = "".join(ch for ch in text if ch.isdigit())
    return (int(digits) if digits else 10**9, text)


async def _form(visit: Visit, tx: Transaction, *, typed: Typed | None = None,
                error: str = "", answers: list[Any] | None = None,
                status: int = 200, **context: Any) -> Response:
    person = visit.resident.person
    if typed is None:
        typed = Typed(name=person.name if person else "",
                      phone=person.phone if person else "",
                      place=person.address if person else "")
    households = await tx.households([visit.microgrid])
    cases = await tx.cases(CaseQuery(microgrids=(visit.microgrid,), statuses=OPEN_STATUSES,
                                     newest_first=True, limit=SHOWN))
    return visit.render(
        "report.html.j2", status=status, typed=typed, error=error,
        answers=answers if answers is not None else await visit.answers(tx),
        buildings=_buildings(households), cases=cases, name=visit.residents.engine.unit_names
        .get(visit.microgrid, visit.microgrid), emergency=visit.residents.config.policy
        .emergency_numbers, urgent_words=visit.residents.config.policy.urgent_keywords,
        photo_mb=visit.residents.settings.photo_mb, max_photos=MAX_PHOTOS,
        limits={"name": NAME_CHARS, "phone": PHONE_CHARS, "place": BUILDING_CHARS,
                "text": visit.residents.config.limits.max_text_chars}, **context)


async def report_page(visit: Visit) -> Response:
    return await _form(visit, visit.tx)


def _typed(visit: Visit) -> Typed:
    return Typed(text=clean_text(visit.field("text", 4000)).strip(),
                 building=visit.field("building", BUILDING_CHARS).strip(),
                 unit=visit.field("unit", BUILDING_CHARS).strip(),
                 place=visit.field("place", BUILDING_CHARS).strip(),
                 name=visit.field("name", NAME_CHARS).strip(),
                 phone=visit.field("phone", PHONE_CHARS).strip(),
                 anonymous=visit.field("anonymous") in ("1", "on", "yes"))


def where(typed: Typed) -> str:
    """The place as the report says it ("3幢2单元"): chosen from the ledger, or typed."""
    chosen = typed.building + (typed.unit if typed.building else "")
    return chosen or typed.place


async def _refuse(visit: Visit, typed: Typed, error: str, status: int,
                  **context: Any) -> Response:
    async with visit.residents.store.transaction() as tx:
        return await _form(visit, tx, typed=typed, error=error, answers=[], status=status,
                           **context)


async def submit(visit: Visit) -> Response:
    """The form, posted: the report said to the engine, then its case page (or the form
    again with the bot's answer: too short, the same as an open case, too many)."""
    typed = _typed(visit)
    if not typed.text:
        return await _refuse(visit, typed, "empty", 400)
    residents = visit.residents
    _, priority = classify(residents.config.policy, typed.text)
    if priority is not Priority.URGENT and not residents.reports.allow(visit.address):
        return await _refuse(visit, typed, "too_many", 429)  # urgent ones always go
    attachments: list[Attachment] = []
    for upload in [f for f in visit.form.getlist("photo") if isinstance(f, UploadFile)]:
        if not upload.filename and not upload.size:
            continue  # an empty file input
        if (upload.size or 0) > residents.photo_limit:
            return await _refuse(visit, typed, "too_large", 413)
        try:
            photo = photos.clean(await upload.read(residents.photo_limit + 1),
                                 limit=residents.photo_limit)
        except photos.PhotoError as exc:
            return await _refuse(visit, typed, exc.code, 413 if exc.code == "too_large"
                                 else 400)
        attachments.append(photo.attachment(len(attachments) + 1))
    await visit.form.close()
    place = where(typed)
    async with residents.store.transaction() as tx:
        await visit.enrol(tx, name=typed.name, phone=typed.phone, building=place)
    words = typed.text
    if place and read_address(words) is None:
        words = f"{words}（{place}）"
    said = await visit.say(f"/report {'匿名 ' if typed.anonymous else ''}{words}",
                           tuple(attachments))
    person = visit.resident.person
    assert person is not None
    async with residents.store.transaction() as tx:
        for answer in said.answers:
            case = await tx.case(answer.case_number) if answer.case_number else None
            if case is not None and case.reporter_id == person.id:
                return RedirectResponse(visit.url(f"/case/{case.number}?said="
                                                  f"{said.message_id}"), status_code=303)
        # Not a new case of theirs: the bot's answer (joined an urgent case, looks like an
        # open one, too short…) above the form, with their words kept.
        return await _form(visit, tx, typed=typed, answers=list(said.answers))


async def say(visit: Visit) -> Response:
    """A button of the bot's answer (follow #12, report anyway): said as its command."""
    text = visit.field("text", 200).strip()
    if not text.startswith("/") or visit.resident.person is None:
        return RedirectResponse(visit.url(), status_code=303)
    said = await visit.say(text)
    back = visit.field("back", 200)
    back = back if back.startswith(visit.url()) and "\\" not in back else visit.url()
    return RedirectResponse(f"{back.split('?')[0]}?said={said.message_id}", status_code=303)


ROUTES = [
    ("", report_page, ("GET",), False),
    ("", submit, ("POST",), True),
    ("/say", say, ("POST",), True),
]
