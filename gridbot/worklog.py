"""The work besides reports in the figures: errands (帮办代办) per volunteer and per kind,
patrol visits (走访) per steward, the ledger's households visited, and the cases that came
from patrols. Computed once (:func:`compute_work`, pure) for ``/stats``, the workbook and
the page alike; the definitions are on the workbook's 口径说明 sheet.

* an **errand** counts in the period it was asked in; it is **done** when its case was
  resolved or closed by ``as_of``; it is its **volunteer**'s (who took it with 接单 or
  finished it), else its holder's; **with proof** = done with a photo or receipt kept;
  **advanced** = money advanced for it, **owed** = of that, not yet repaid;
* a **visit** counts in the period it was logged in, for the steward who logged it;
  **households visited** = the ledger lines named by room (each once) plus, for visits
  naming no room, the households said (``5户``), at most the ledger's households; the
  **coverage** is that ÷ the households in the ledger; **cases from patrols** = visits of
  the period made a case (转工单).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gridbot.domain import Case, Errand, Patrol, Status
from gridbot.ratios import Ratio
from gridbot.store.base import Transaction


@dataclass(frozen=True, kw_only=True)
class ErrandRow:
    #: a person id (per volunteer) or a kind code (per kind)
    key: str
    name: str
    asked: int = 0
    done: int = 0
    with_proof: int = 0
    advanced_cents: int = 0
    owed_cents: int = 0


@dataclass(frozen=True, kw_only=True)
class VisitRow:
    person_id: str
    name: str
    visits: int = 0
    households: int = 0
    cases: int = 0


@dataclass(frozen=True, kw_only=True)
class Work:
    errands: int = 0
    errands_done: int = 0
    by_volunteer: tuple[ErrandRow, ...] = ()
    by_kind: tuple[ErrandRow, ...] = ()
    visits: int = 0
    households_visited: int = 0
    ledger_households: int = 0
    coverage: Ratio = field(default_factory=lambda: Ratio(num=0, den=0))
    cases_from_patrols: int = 0
    by_steward: tuple[VisitRow, ...] = ()


def _errand_rows(items: Iterable[tuple[str, str, Errand, Case | None]]) -> tuple[ErrandRow, ...]:
    rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    names: dict[str, str] = {}
    for key, name, errand, case in items:
        names[key] = name
        row = rows[key]
        done = case is not None and case.status in (Status.RESOLVED, Status.CLOSED)
        row["asked"] += 1
        row["done"] += done
        row["with_proof"] += done and bool(errand.proof)
        row["advanced_cents"] += errand.advanced_cents
        row["owed_cents"] += 0 if errand.repaid else errand.advanced_cents
    return tuple(ErrandRow(key=k, name=names[k], **v) for k, v in rows.items())


def compute_work(errands: Sequence[tuple[Errand, Case | None]], patrols: Sequence[Patrol], *,
                 ledger_households: int, names: Mapping[str, str],
                 kinds: Sequence[str]) -> Work:
    """The figures of the errands and visits of a period (see the module's docstring)."""
    def who(errand: Errand, case: Case | None) -> str:
        return errand.volunteer_id or (case.assignee_id if case else None) or ""

    by_volunteer = sorted(
        _errand_rows((who(e, c), names.get(who(e, c), who(e, c)), e, c) for e, c in errands),
        key=lambda r: (-r.asked, r.key))
    order = {k: i for i, k in enumerate(kinds)}
    by_kind = sorted(_errand_rows((e.kind, e.kind, e, c) for e, c in errands),
                     key=lambda r: order.get(r.key, len(order)))
    visits: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    named: set[tuple[str, str]] = set()
    counted = 0
    for patrol in patrols:
        row = visits[patrol.steward_id]
        row["visits"] += 1
        row["households"] += patrol.households
        row["cases"] += patrol.case_number is not None
        if patrol.rooms:
            named |= {(patrol.microgrid, room) for room in patrol.rooms}
        else:
            counted += patrol.households
    visited = min(len(named) + counted, ledger_households) if ledger_households \
        else len(named) + counted
    return Work(
        errands=len(errands),
        errands_done=sum(r.done for r in by_volunteer),
        by_volunteer=tuple(by_volunteer), by_kind=tuple(by_kind),
        visits=len(patrols), households_visited=visited, ledger_households=ledger_households,
        coverage=Ratio(num=visited if ledger_households else 0, den=ledger_households),
        cases_from_patrols=sum(p.case_number is not None for p in patrols),
        by_steward=tuple(sorted(
            (VisitRow(person_id=pid, name=names.get(pid, pid), **v) for pid, v in
             visits.items()), key=lambda r: (-r.visits, r.person_id))))


async def load_work(tx: Transaction, microgrids: Sequence[str], start: datetime,
                    end: datetime, as_of: datetime, kinds: Sequence[str]) -> Work:
    """The errands and visits of [start, end) in ``microgrids``, as of ``as_of``."""
    wanted = set(microgrids)
    errands: list[tuple[Errand, Case | None]] = []
    for errand in await tx.errands_made(start, end):
        case = await tx.case(errand.case_number)
        if case is not None and case.microgrid in wanted and errand.created_at <= as_of:
            errands.append((errand, case))
    patrols = [p for p in await tx.patrols_made(start, end)
               if p.microgrid in wanted and p.at <= as_of]
    ids = {p.steward_id for p in patrols} | {
        e.volunteer_id or (c.assignee_id if c else None) or "" for e, c in errands}
    names = {}
    for pid in ids - {""}:
        person = await tx.person(pid)
        names[pid] = person.name if person else pid
    counts = await tx.household_counts()
    return compute_work(errands, patrols, names=names, kinds=kinds,
                        ledger_households=sum(counts.get(m, 0) for m in wanted))
