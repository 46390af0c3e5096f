"""``gridbot export --cases``: cases as CSV or JSON, for other systems.

One row (CSV) or object (JSON) per case reported in the chosen days, in case-number
order, with the same derived facts the statistics use (first claim, the 办结 that stuck,
missed deadlines, reopenings); JSON also carries every event. Instants are ISO 8601 with
the configured zone's offset (``2026-10-03T09:00:00+08:00``). A resident's phone number
and address are never exported: they are not on the case, and stay in the configuration.
CSV is written with a byte-order mark so that Excel opens the Chinese text correctly.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from gridbot.config import Config
from gridbot.stats import CaseFacts, Org, Period, case_facts, load_org
from gridbot.store.base import Store

_EVERYTHING = datetime.max.replace(tzinfo=UTC)

FIELDS = (
    "number", "microgrid", "microgrid_name", "grid", "community", "category",
    "category_name", "priority", "status", "level", "reporter_id", "reporter_name",
    "assignee_id", "assignee_name", "created_at", "first_claimed_at", "first_claimed_by",
    "resolved_at", "resolved_by", "closed_at", "claim_by", "resolve_by", "rating",
    "rating_text", "reopened", "missed_deadline", "escalated", "text",
)


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    return None if value is None else value.astimezone(tz).isoformat(timespec="seconds")


def case_record(f: CaseFacts, org: Org, tz: ZoneInfo) -> dict[str, Any]:
    case = f.case

    def name(pid: str | None) -> str:
        return org.people.get(pid, ("", ""))[0] if pid else ""

    grid = org.ancestor(case.microgrid, "grid") or ""
    community = org.ancestor(case.microgrid, "community") or ""
    return {
        "number": case.number, "microgrid": case.microgrid,
        "microgrid_name": org.name(case.microgrid), "grid": grid, "community": community,
        "category": case.category,
        "category_name": org.categories.get(case.category, case.category),
        "priority": case.priority.value, "status": f.status.value, "level": case.level,
        # a community that hides anonymous reporters from handlers hides them here too
        **({"reporter_id": "", "reporter_name": ""} if case.anonymous == "everyone" else
           {"reporter_id": case.reporter_id, "reporter_name": name(case.reporter_id)}),
        "assignee_id": case.assignee_id or "", "assignee_name": name(case.assignee_id),
        "created_at": _iso(case.created_at, tz),
        "first_claimed_at": _iso(f.first_claim_at, tz),
        "first_claimed_by": f.first_claimer or "",
        "resolved_at": _iso(f.resolved_at, tz), "resolved_by": f.resolver or "",
        "closed_at": _iso(case.closed_at, tz), "claim_by": _iso(case.claim_by, tz),
        "resolve_by": _iso(case.resolve_by, tz), "rating": f.rating,
        "rating_text": case.rating_text if f.rating is not None else "",
        "reopened": f.reopened, "missed_deadline": f.missed, "escalated": f.escalated,
        "text": case.text,
    }


def event_record(f: CaseFacts, org: Org, tz: ZoneInfo) -> Iterator[dict[str, Any]]:
    for e in f.events:
        yield {"at": _iso(e.at, tz), "kind": e.kind, "actor_id": e.actor_id or "",
               "actor_name": org.people.get(e.actor_id, ("", ""))[0] if e.actor_id else "",
               "text": e.text, "data": e.data}


async def export_cases(store: Store, config: Config, out: TextIO, *, period: Period,
                       scope: str | None, fmt: str, now: datetime) -> int:
    """Write the cases reported in ``period`` under ``scope`` (``None``: all); their count."""
    async with store.transaction() as tx:
        microgrids = None if scope is None else await tx.microgrids_under(scope)
        histories = await tx.case_histories(microgrids=microgrids, since=period.start,
                                            until=period.end)
        people: list[str] = []
        for case, events in histories:
            people += [case.reporter_id, case.assignee_id or ""]
            people += [e.actor_id for e in events if e.actor_id]
        org = await load_org(tx, config, config.locale, people)
    tz = config.timezone
    # Everything stored goes out: no cut-off at ``now`` (whose clock may differ).
    facts = [case_facts(case, events, _EVERYTHING) for case, events in histories]
    if fmt == "json":
        records = []
        for f in facts:
            record = case_record(f, org, tz)
            record["events"] = list(event_record(f, org, tz))
            records.append(record)
        json.dump({"exported_at": _iso(now, tz), "since": period.first.isoformat(),
                   "until": period.last.isoformat(), "scope": scope or config.subdistrict.code,
                   "cases": records}, out, ensure_ascii=False, indent=1)
        out.write("\n")
    else:
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\r\n")
        writer.writeheader()
        for f in facts:
            row = case_record(f, org, tz)
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return len(facts)
