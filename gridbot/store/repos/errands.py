"""Errands (帮办代办), patrol visits (走访) and shift swaps (换班): the records of the work
communities do besides reports (issue 20)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update

from gridbot.domain import Errand, Patrol, ShiftSwap, SwapStatus
from gridbot.store.dialect import const, quick
from gridbot.store.repos.base import Repository, binds
from gridbot.store.repos.cases import MAX_NUMBER
from gridbot.store.rows import attachments, attachments_json
from gridbot.store.tables import errands, patrols, shift_swaps

_ERRAND_COLUMNS = ("case_number", "beneficiary", "beneficiary_id", "household", "kind", "task",
                   "tags", "consent_by", "consent_how", "consent_at", "volunteer_id",
                   "advanced_cents", "advanced_by", "repaid", "repaid_at", "proof",
                   "proof_reason", "created_at")
_ADD_ERRAND = insert(errands).values(binds(*_ERRAND_COLUMNS))
_UPDATE_ERRAND = (update(errands).where(errands.c.case_number == bindparam("number"))
                  .values(binds(*_ERRAND_COLUMNS[1:])))
_ERRAND = select(errands).where(errands.c.case_number == bindparam("number"))
_ERRANDS_MADE = (select(errands).where(errands.c.created_at >= bindparam("since"),
                                       errands.c.created_at < bindparam("until"))
                 .order_by(errands.c.case_number))

_PATROL_COLUMNS = ("at", "steward_id", "microgrid", "buildings", "households", "rooms", "text",
                   "platform", "chat_id")
_ADD_PATROL = insert(patrols).values(binds(*_PATROL_COLUMNS)).returning(patrols.c.id)
_PATROL = select(patrols).where(patrols.c.id == bindparam("id")).with_for_update()
_PATROL_CASE = (update(patrols).where(patrols.c.id == bindparam("id"),
                                      patrols.c.case_number.is_(None))
                .values(case_number=bindparam("case_number")))
_PATROLS_MADE = (select(patrols).where(patrols.c.at >= bindparam("since"),
                                       patrols.c.at < bindparam("until"))
                 .order_by(patrols.c.id))

_SWAP_COLUMNS = ("microgrid", "from_person", "to_person", "day_from", "day_to", "status",
                 "asked_at")
_ADD_SWAP = insert(shift_swaps).values(binds(*_SWAP_COLUMNS)).returning(shift_swaps.c.id)
_SWAP = select(shift_swaps).where(shift_swaps.c.id == bindparam("id")).with_for_update()
_ANSWER_SWAP = (update(shift_swaps).where(shift_swaps.c.id == bindparam("id"),
                                          shift_swaps.c.status == const(SwapStatus.PENDING.value))
                .values(binds("status", "answered_at")))
_CANCEL_SWAP = (update(shift_swaps).where(shift_swaps.c.id == bindparam("id"),
                                          shift_swaps.c.status.in_(
                                              [const(SwapStatus.PENDING.value),
                                               const(SwapStatus.ACCEPTED.value)]))
                .values(status=const(SwapStatus.CANCELLED.value),
                        answered_at=bindparam("answered_at")))
#: by shift_swaps_days: the accepted swaps that end today or later (a handful)
_SWAPS_ON = quick(select(shift_swaps.c.from_person, shift_swaps.c.to_person)
                  .where(shift_swaps.c.status == const(SwapStatus.ACCEPTED.value),
                         shift_swaps.c.day_from <= bindparam("day"),
                         shift_swaps.c.day_to >= bindparam("day"))
                  .order_by(shift_swaps.c.id))
_SWAP_TABLES = frozenset({"shift_swaps"})
_LIVE = (SwapStatus.PENDING.value, SwapStatus.ACCEPTED.value)
_SWAPS_OF = (select(shift_swaps)
             .where(or_(shift_swaps.c.from_person == bindparam("person"),
                        shift_swaps.c.to_person == bindparam("person")),
                    shift_swaps.c.day_to >= bindparam("since"),
                    shift_swaps.c.status.in_([const(v) for v in _LIVE]))
             .order_by(shift_swaps.c.day_from, shift_swaps.c.id))
_SWAPS_CLASH = (select(shift_swaps)
                .where(shift_swaps.c.from_person == bindparam("person"),
                       shift_swaps.c.status.in_([const(v) for v in _LIVE]),
                       and_(shift_swaps.c.day_from <= bindparam("last"),
                            shift_swaps.c.day_to >= bindparam("first")))
                .order_by(shift_swaps.c.id))


class ErrandRepository(Repository):
    # -- errands ------------------------------------------------------------------------
    def _errand_params(self, errand: Errand) -> dict[str, Any]:
        return {
            "case_number": errand.case_number, "beneficiary": errand.beneficiary,
            "beneficiary_id": errand.beneficiary_id, "household": errand.household,
            "kind": errand.kind, "task": errand.task,
            "tags": json.dumps(list(errand.tags), ensure_ascii=False),
            "consent_by": errand.consent_by, "consent_how": errand.consent_how,
            "consent_at": self.at(errand.consent_at), "volunteer_id": errand.volunteer_id,
            "advanced_cents": errand.advanced_cents, "advanced_by": errand.advanced_by,
            "repaid": errand.repaid, "repaid_at": self.at(errand.repaid_at),
            "proof": attachments_json(errand.proof), "proof_reason": errand.proof_reason,
            "created_at": self.at(errand.created_at),
        }

    def _errand(self, row: Any) -> Errand:
        return Errand(
            case_number=row["case_number"], beneficiary=row["beneficiary"],
            beneficiary_id=row["beneficiary_id"], household=row["household"],
            kind=row["kind"], task=row["task"], tags=tuple(json.loads(row["tags"] or "[]")),
            consent_by=row["consent_by"], consent_how=row["consent_how"],
            consent_at=self.rows.read(row["consent_at"]), volunteer_id=row["volunteer_id"],
            advanced_cents=row["advanced_cents"], advanced_by=row["advanced_by"],
            repaid=bool(row["repaid"]), repaid_at=self.rows.read(row["repaid_at"]),
            proof=attachments(row["proof"] or "[]"), proof_reason=row["proof_reason"],
            created_at=self.rows.instant(row["created_at"]))

    async def add_errand(self, errand: Errand) -> None:
        await self.sql.run(_ADD_ERRAND, self._errand_params(errand))

    async def errand(self, case_number: int) -> Errand | None:
        if not 0 < case_number < MAX_NUMBER:
            return None
        row = await self.sql.one(_ERRAND, {"number": case_number})
        return self._errand(row) if row else None

    async def update_errand(self, errand: Errand) -> None:
        params = self._errand_params(errand)
        params["number"] = params.pop("case_number")
        await self.sql.run(_UPDATE_ERRAND, params)

    async def errands_made(self, since: datetime, until: datetime) -> list[Errand]:
        rows = await self.sql.all(_ERRANDS_MADE, {"since": self.at(since),
                                                  "until": self.at(until)})
        return [self._errand(r) for r in rows]

    # -- patrol visits ------------------------------------------------------------------
    def _patrol(self, row: Any) -> Patrol:
        return Patrol(
            id=row["id"], at=self.rows.instant(row["at"]), steward_id=row["steward_id"],
            microgrid=row["microgrid"], platform=row["platform"], chat_id=row["chat_id"],
            buildings=tuple(json.loads(row["buildings"] or "[]")),
            households=row["households"], rooms=tuple(json.loads(row["rooms"] or "[]")),
            text=row["text"], case_number=row["case_number"])

    async def add_patrol(self, patrol: Patrol) -> Patrol:
        new_id = await self.sql.value(_ADD_PATROL, {
            "at": self.at(patrol.at), "steward_id": patrol.steward_id,
            "microgrid": patrol.microgrid,
            "buildings": json.dumps(list(patrol.buildings), ensure_ascii=False),
            "households": patrol.households,
            "rooms": json.dumps(list(patrol.rooms), ensure_ascii=False), "text": patrol.text,
            "platform": patrol.platform, "chat_id": patrol.chat_id})
        return dataclasses.replace(patrol, id=new_id)

    async def patrol(self, patrol_id: int) -> Patrol | None:
        if not 0 < patrol_id < MAX_NUMBER:
            return None
        row = await self.sql.one(_PATROL, {"id": patrol_id})
        return self._patrol(row) if row else None

    async def set_patrol_case(self, patrol_id: int, case_number: int) -> bool:
        return await self.sql.run(_PATROL_CASE, {"id": patrol_id,
                                                 "case_number": case_number}) == 1

    async def patrols_made(self, since: datetime, until: datetime) -> list[Patrol]:
        rows = await self.sql.all(_PATROLS_MADE, {"since": self.at(since),
                                                  "until": self.at(until)})
        return [self._patrol(r) for r in rows]

    # -- shift swaps ----------------------------------------------------------------------
    def _swap(self, row: Any) -> ShiftSwap:
        return ShiftSwap(
            id=row["id"], microgrid=row["microgrid"], from_person=row["from_person"],
            to_person=row["to_person"], first=row["day_from"], last=row["day_to"],
            status=SwapStatus(row["status"]), asked_at=self.rows.instant(row["asked_at"]),
            answered_at=self.rows.read(row["answered_at"]))

    async def add_swap(self, swap: ShiftSwap) -> ShiftSwap:
        new_id = await self.sql.value(_ADD_SWAP, {
            "microgrid": swap.microgrid, "from_person": swap.from_person,
            "to_person": swap.to_person, "day_from": swap.first, "day_to": swap.last,
            "status": swap.status.value, "asked_at": self.at(swap.asked_at)})
        return dataclasses.replace(swap, id=new_id)

    async def swap(self, swap_id: int) -> ShiftSwap | None:
        if not 0 < swap_id < MAX_NUMBER:
            return None
        row = await self.sql.one(_SWAP, {"id": swap_id})
        return self._swap(row) if row else None

    async def answer_swap(self, swap_id: int, status: SwapStatus, at: datetime) -> bool:
        return await self.sql.run(_ANSWER_SWAP, {"id": swap_id, "status": status.value,
                                                 "answered_at": self.at(at)}) == 1

    async def cancel_swap(self, swap_id: int, at: datetime) -> bool:
        return await self.sql.run(_CANCEL_SWAP, {"id": swap_id,
                                                 "answered_at": self.at(at)}) == 1

    async def swaps_on(self, day: str) -> dict[str, str]:
        # Routing asks at every report (and every level): remembered for the transaction.
        # Remembered across transactions too, while no swap changes (see OrgReads).
        known, found = self.sql.recall_org(("swaps_on", day))
        if known:
            return dict(found)
        rows = await self.sql.all(_SWAPS_ON, {"day": day})
        found = {}
        for row in rows:
            found.setdefault(row["from_person"], row["to_person"])
        self.sql.remember_org(("swaps_on", day), _SWAP_TABLES, found)
        return dict(found)

    async def swaps_of(self, person_id: str, since: str) -> list[ShiftSwap]:
        rows = await self.sql.all(_SWAPS_OF, {"person": person_id, "since": since})
        return [self._swap(r) for r in rows]

    async def swaps_clashing(self, person_id: str, first: str, last: str) -> list[ShiftSwap]:
        rows = await self.sql.all(_SWAPS_CLASH, {"person": person_id, "first": first,
                                                 "last": last})
        return [self._swap(r) for r in rows]
