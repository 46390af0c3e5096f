"""The org tree, people, their rosters and duty, and how they are reached: platform
accounts, chats and the one-time link codes that tie an account to a person."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Delete,
    Insert,
    Select,
    Text,
    Time,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    literal_column,
    null,
    select,
    true,
    union,
    union_all,
    update,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.sql.expression import CompoundSelect

from gridbot.config import Config, Shift
from gridbot.domain import Account, Chat, ChatKind, DutyStatus, Person, Role
from gridbot.store.base import LinkCode, OrgUnit, ResidentAccount, RosterEntry
from gridbot.store.dialect import Dialect, const, quick
from gridbot.store.repos.base import Repository, binds, in_list, numbered
from gridbot.store.tables import (
    accounts,
    chats,
    duty,
    inbox,
    link_codes,
    org_units,
    org_version,
    people,
    rosters,
    shifts,
)

#: deepest first, for the parent key
KINDS = ("microgrid", "grid", "community", "subdistrict")

_UNIT = select(org_units).where(org_units.c.code == bindparam("code"))
_UNITS = (select(org_units).where(org_units.c.kind == bindparam("kind"))
          .order_by(org_units.c.position, org_units.c.code))
_PERSON = quick(select(people).where(people.c.id == bindparam("id")))
_DEACTIVATE = update(people).where(~people.c.auto).values(active=false(), position=None)
_ADD_PERSON = quick(insert(people).values(active=true(), **binds(
    "id", "name", "role", "unit", "phone", "address", "locale", "auto")))
_CLEAR_ROSTERS = delete(rosters)
_CLEAR_SHIFTS = delete(shifts)
_ADD_ROSTER = insert(rosters).values(binds("microgrid", "person_id", "position"))
_ADD_SHIFT = insert(shifts).values(binds("microgrid", "person_id", "days", "start_time",
                                         "end_time"))

def _labelled(table: Any, prefix: str) -> list[Any]:
    return [c.label(f"{prefix}{c.name}") for c in table.c]


def _part(row: Any, prefix: str, table: Any) -> dict[str, Any]:
    """The columns of ``table`` in a joined row, by their own names."""
    return {name: row[label] for name, label in _labels(prefix, table)}


@cache
def _labels(prefix: str, table: Any) -> tuple[tuple[str, str], ...]:
    return tuple((c.name, f"{prefix}{c.name}") for c in table.c)


#: a micro-grid's roster (kind 0, by position) and shifts (kind 1, by id), each with the
#: person named and their duty, in one statement: routing asks for all three at once
_ROSTER_PART = select(
    literal_column("0").label("kind"), rosters.c.position.label("pos"), rosters.c.person_id,
    sql_cast(null(), Text).label("days"), sql_cast(null(), Time).label("start_time"),
    sql_cast(null(), Time).label("end_time"),
).where(rosters.c.microgrid == bindparam("microgrid"))
_SHIFT_PART = select(
    literal_column("1").label("kind"), shifts.c.id.label("pos"), shifts.c.person_id,
    shifts.c.days, shifts.c.start_time, shifts.c.end_time,
).where(shifts.c.microgrid == bindparam("microgrid"))
_ROSTER_UNION = union_all(_ROSTER_PART, _SHIFT_PART).subquery("r")
_ROSTER = quick(select(_ROSTER_UNION, *_labelled(people, "p_"),
                  duty.c.person_id.label("d_person_id"), duty.c.off.label("d_off"),
                  duty.c.until.label("d_until"))
           .select_from(_ROSTER_UNION
                        .outerjoin(people, people.c.id == _ROSTER_UNION.c.person_id)
                        .outerjoin(duty, duty.c.person_id == _ROSTER_UNION.c.person_id))
           .order_by(_ROSTER_UNION.c.kind, _ROSTER_UNION.c.pos))
#: who is speaking where: the chat, the sender's account and its person, in one statement
_ONE = select(literal_column("1").label("one")).subquery("one")
_SPEAKER = quick(select(*_labelled(chats, "c_"), *_labelled(accounts, "a_"),
                   *_labelled(people, "p_"), org_version.c.n.label("org_n"))
            .select_from(_ONE
                         # the org version comes along: see OrgReads
                         .outerjoin(org_version, org_version.c.id == 1)
                         .outerjoin(chats, and_(chats.c.platform == bindparam("platform"),
                                                chats.c.chat_id == bindparam("chat_id")))
                         .outerjoin(accounts, and_(accounts.c.platform == bindparam("platform"),
                                                   accounts.c.user_id == bindparam("user_id")))
                         .outerjoin(people, people.c.id == accounts.c.person_id)))
_PEOPLE_TABLES = frozenset({"people"})
_DUTY_TABLES = frozenset({"duty"})
_CHAT_TABLES = frozenset({"chats"})
_ACCOUNT_TABLES = frozenset({"accounts"})
_ACCOUNTS_OF_TABLES = frozenset({"accounts", "chats"})
_SPEAKER_TABLES = frozenset({"chats", "accounts", "people"})
_ROSTER_TABLES = frozenset({"rosters", "shifts", "people", "duty"})
_ROSTERS_OF: CompoundSelect[Any] = union(
    select(rosters.c.microgrid).where(rosters.c.person_id == bindparam("person_id")),
    select(shifts.c.microgrid).where(shifts.c.person_id == bindparam("person_id")),
).order_by(literal_column("1"))
_DUTY = quick(select(duty).where(duty.c.person_id == bindparam("person_id")))
_ACCOUNT = quick(select(accounts).where(accounts.c.platform == bindparam("platform"),
                                        accounts.c.user_id == bindparam("user_id")))
#: a person's accounts, each with its private chat (whether it still reaches them is
#: what is asked next, every time)
_ACCOUNTS_OF = quick(select(accounts, *_labelled(chats, "c_"))
                .select_from(accounts.outerjoin(chats, and_(
                    chats.c.platform == accounts.c.platform,
                    chats.c.chat_id == accounts.c.private_chat_id)))
                .where(accounts.c.person_id == bindparam("person_id"))
                .order_by(accounts.c.linked_at, accounts.c.platform, accounts.c.user_id))
_CHAT = quick(select(chats).where(chats.c.platform == bindparam("platform"),
                                  chats.c.chat_id == bindparam("chat_id")))
_UNREACHABLE = quick(update(chats).where(chats.c.platform == bindparam("platform"),
                                    chats.c.chat_id == bindparam("chat_id"))
                .values(binds("unreachable_at", "unreachable_reason")))
_GROUPS = (select(chats).where(chats.c.microgrid == bindparam("microgrid"),
                               chats.c.kind == const(ChatKind.GROUP.value))
           .order_by(chats.c.platform, chats.c.chat_id))
_ADD_LINK_CODE = insert(link_codes).values(binds("code_hash", "person_id", "created_at",
                                                 "expires_at"))
_LINK_CODE = (select(link_codes).where(link_codes.c.code_hash == bindparam("code_hash"))
              .with_for_update())
_USE_LINK_CODE = (update(link_codes).where(link_codes.c.code_hash == bindparam("code_hash"))
                  .values(binds("used_at", "used_by")))


@cache
def _put_unit(d: Dialect) -> Insert:
    return d.upsert(org_units, ["code"], ["kind", "name", "parent", "tags", "position"]).values(
        binds("code", "kind", "name", "parent", "tags", "position"))


@cache
def _drop_units(count: int) -> Delete:
    return delete(org_units).where(org_units.c.kind == bindparam("kind"),
                                   ~in_list(org_units.c.code, "keep", count))


@cache
def _put_person(d: Dialect) -> Insert:
    return d.upsert(people, ["id"], ["name", "role", "unit", "phone", "address", "locale",
                                     "position"], auto=false(), active=true()).values(
        auto=false(), active=true(),
        **binds("id", "name", "role", "unit", "phone", "address", "locale", "position"))


@cache
def _resident_accounts(count: int) -> Select[Any]:
    """Residents of ``count`` micro-grids with each account and its private chat's latest
    handled message (the inbox's key begins with platform and chat: an index lookup)."""
    last = (select(func.max(inbox.c.handled_at))
            .where(inbox.c.platform == accounts.c.platform,
                   inbox.c.chat_id == accounts.c.private_chat_id)
            .scalar_subquery())
    return (select(people.c.id, people.c.unit, accounts.c.platform, last.label("last_wrote"))
            .select_from(people.outerjoin(accounts, accounts.c.person_id == people.c.id))
            .where(people.c.active, people.c.role == const(Role.RESIDENT.value),
                   in_list(people.c.unit, "unit", count))
            .order_by(people.c.unit, people.c.id, accounts.c.platform))


@cache
def _people(d: Dialect, by_role: bool) -> Select[Any]:
    query = select(people).where(people.c.active)
    if by_role:
        query = query.where(people.c.role == bindparam("role"),
                            people.c.unit == bindparam("unit"))
    else:
        query = query.where((people.c.name == bindparam("name")) |
                            (people.c.id == bindparam("name")))
    return query.order_by(people.c.position.is_(None), people.c.position,
                          d.written_order(people))


@cache
def _microgrids_under(d: Dialect) -> Select[Any]:
    sub = (select(org_units.c.code, org_units.c.kind)
           .where(org_units.c.code == bindparam("code")).cte("sub", recursive=True))
    child = org_units.alias("u")
    sub = sub.union_all(select(child.c.code, child.c.kind).join(sub, child.c.parent == sub.c.code))
    return (select(sub.c.code).where(sub.c.kind == const("microgrid")).order_by(sub.c.code))


@cache
def _set_duty(d: Dialect) -> Insert:
    return d.upsert(duty, ["person_id"], ["off", "until", "changed_at"]).values(
        binds("person_id", "off", "until", "changed_at"))


@cache
def _save_account(d: Dialect) -> Insert:
    stmt = d.insert(accounts)
    new = stmt.excluded
    return quick(stmt.values(binds(
        "platform", "user_id", "display_name", "person_id", "private_chat_id", "linked_at",
    )).on_conflict_do_update(index_elements=["platform", "user_id"], set_={
        "display_name": new.display_name, "person_id": new.person_id,
        "private_chat_id": func.coalesce(new.private_chat_id, accounts.c.private_chat_id),
        "linked_at": case((accounts.c.person_id.is_not_distinct_from(new.person_id),
                           accounts.c.linked_at), else_=new.linked_at),
    }))


@cache
def _save_chat(d: Dialect) -> Insert:
    stmt = d.insert(chats)
    new = stmt.excluded
    return quick(stmt.values(binds(
        "platform", "chat_id", "kind", "title", "microgrid", "bound_by", "bound_at",
    )).on_conflict_do_update(index_elements=["platform", "chat_id"], set_={
        "kind": new.kind, "title": new.title, "microgrid": new.microgrid,
        "bound_by": func.coalesce(new.bound_by, chats.c.bound_by),
        "bound_at": func.coalesce(new.bound_at, chats.c.bound_at),
    }))


def cast_person(found: Any) -> Person | None:
    return cast(Person | None, found)


class PeopleRepository(Repository):
    # -- org and people -------------------------------------------------------------
    async def sync_org(self, config: Config) -> None:
        units: list[tuple[str, str, str, str | None, str]] = [
            (config.subdistrict.code, "subdistrict", config.subdistrict.name, None, "[]")]
        units += [(c.code, "community", c.name, config.subdistrict.code, "[]")
                  for c in config.communities]
        units += [(g.code, "grid", g.name, g.community, "[]") for g in config.grids]
        units += [(m.code, "microgrid", m.name, m.grid, json.dumps(list(m.tags)))
                  for m in config.microgrids]
        # In order, parents first: the parent key is checked per row.
        await self.sql.many(_put_unit(self.dialect), [
            {"code": code, "kind": kind, "name": name, "parent": parent, "tags": tags,
             "position": position}
            for position, (code, kind, name, parent, tags) in enumerate(units)])
        # Units gone from the configuration leave the tree (deepest first, for the parent
        # key); their cases keep the code they were filed under.
        keep = numbered("keep", [u[0] for u in units])
        for kind in KINDS:
            await self.sql.run(_drop_units(len(units)), {"kind": kind, **keep})
        await self.sql.run(_DEACTIVATE)
        await self.sql.many(_put_person(self.dialect), [
            {"id": p.id, "name": p.name, "role": p.role.value, "unit": p.unit,
             "phone": p.phone, "address": p.address, "locale": p.locale, "position": position}
            for position, p in enumerate(config.people)])
        await self.sql.run(_CLEAR_ROSTERS)
        await self.sql.run(_CLEAR_SHIFTS)
        members: list[dict[str, Any]] = []
        shift_rows: list[dict[str, Any]] = []
        for roster in config.rosters.values():
            names = [roster.primary, *roster.backups]
            members += [{"microgrid": roster.microgrid, "person_id": pid, "position": position}
                        for position, pid in enumerate(dict.fromkeys(names))]
            shift_rows += [{"microgrid": roster.microgrid, "person_id": s.person,
                            "days": json.dumps(list(s.days)),
                            "start_time": self.dialect.clock(s.start),
                            "end_time": self.dialect.clock(s.end)} for s in roster.shifts]
        await self.sql.many(_ADD_ROSTER, members)
        await self.sql.many(_ADD_SHIFT, shift_rows)

    async def unit(self, code: str) -> OrgUnit | None:
        row = await self.sql.one(_UNIT, {"code": code})
        return self.rows.unit(row) if row else None

    async def units(self, kind: str) -> list[OrgUnit]:
        return [self.rows.unit(r) for r in await self.sql.all(_UNITS, {"kind": kind})]

    async def microgrids_under(self, code: str) -> list[str]:
        rows = await self.sql.all(_microgrids_under(self.dialect), {"code": code})
        return [r["code"] for r in rows]

    # Reads of people, duty, accounts and chats are remembered for the rest of the
    # transaction (a write to their table forgets them: see Sql.remember).
    async def person(self, person_id: str) -> Person | None:
        known, found = self.sql.recall(("person", person_id))
        if known:
            return cast_person(found)
        row = await self.sql.one(_PERSON, {"id": person_id})
        return self._remember_person(person_id, row)

    def _remember_person(self, person_id: str, row: Any) -> Person | None:
        found = self.rows.person(row) if row else None
        return cast_person(self.sql.remember(("person", person_id), _PEOPLE_TABLES, found))

    async def speaker(self, platform: str, chat_id: str,
                      user_id: str) -> tuple[Chat | None, Account | None, Person | None]:
        # The same speaker in the same chat again in this transaction (messages handled
        # together): what was found, unless chats, accounts or people were written since.
        key = ("speaker", platform, chat_id, user_id)
        known, found = self.sql.recall(key)
        if known:
            return cast(tuple[Chat | None, Account | None, Person | None], found)
        return cast(tuple[Chat | None, Account | None, Person | None], self.sql.remember(
            key, _SPEAKER_TABLES, await self._speaker(platform, chat_id, user_id)))

    async def _speaker(self, platform: str, chat_id: str,
                       user_id: str) -> tuple[Chat | None, Account | None, Person | None]:
        row = await self.sql.one(_SPEAKER, {"platform": platform, "chat_id": chat_id,
                                            "user_id": user_id})
        if row["org_n"] is not None:
            self.sql.org_seen(int(row["org_n"]))
        chat = self.rows.chat(_part(row, "c_", chats)) if row["c_platform"] is not None \
            else None
        account = self.rows.account(_part(row, "a_", accounts)) \
            if row["a_platform"] is not None else None
        self.sql.remember(("chat", platform, chat_id), _CHAT_TABLES, chat)
        self.sql.remember(("account", platform, user_id), _ACCOUNT_TABLES, account)
        person = None
        if account is not None and account.person_id:
            person = self._remember_person(
                account.person_id, _part(row, "p_", people) if row["p_id"] is not None
                else None)
        return chat, account, person

    async def people_named(self, name: str) -> list[Person]:
        rows = await self.sql.all(_people(self.dialect, False), {"name": name})
        return [self.rows.person(r) for r in rows]

    async def people_in_role(self, role: Role, unit: str) -> list[Person]:
        rows = await self.sql.all(_people(self.dialect, True),
                                  {"role": role.value, "unit": unit})
        return [self.rows.person(r) for r in rows]

    async def resident_accounts(self, microgrids: Sequence[str]) -> list[ResidentAccount]:
        rows = await self.sql.all(_resident_accounts(len(microgrids)),
                                  numbered("unit", microgrids))
        return [ResidentAccount(person_id=r["id"], microgrid=r["unit"], platform=r["platform"],
                                last_wrote=self.rows.read(r["last_wrote"]))
                for r in rows]

    async def add_person(self, person: Person) -> None:
        shared = not self.sql.org_dirty
        await self.sql.run(_ADD_PERSON, {
            "id": person.id, "name": person.name, "role": person.role.value,
            "unit": person.unit, "phone": person.phone, "address": person.address,
            "locale": person.locale, "auto": person.auto})
        if person.auto and shared:
            # A resident the bot has just met is on no roster (and raises no org version):
            # the rosters and swaps remembered still hold for this transaction.
            self.sql.org_dirty = False

    async def roster(self, microgrid: str) -> tuple[list[RosterEntry], list[Shift]]:
        # One statement: the people named and their duty come along (and are remembered),
        # since routing asks for them next.
        known, remembered = self.sql.recall_org(("roster", microgrid))
        if known:
            if ("roster", microgrid) not in self.sql.memo:  # from an earlier transaction
                self.sql.remember(("roster", microgrid), _ROSTER_TABLES, remembered)
                for person_id, (person, status) in remembered[2].items():
                    self.sql.remember(("person", person_id), _PEOPLE_TABLES, person)
                    self.sql.remember(("duty", person_id), _DUTY_TABLES, status)
            return list(remembered[0]), list(remembered[1])
        clock = self.dialect.clock_back
        entries: list[RosterEntry] = []
        found: list[Shift] = []
        named: dict[str, tuple[Person | None, DutyStatus | None]] = {}
        for r in await self.sql.all(_ROSTER, {"microgrid": microgrid}):
            person_id = r["person_id"]
            if r["kind"] == 0:
                entries.append(RosterEntry(person_id=person_id, position=r["pos"]))
            else:
                found.append(Shift(person=person_id, days=tuple(json.loads(r["days"])),
                                   start=clock(r["start_time"]), end=clock(r["end_time"])))
            person = self._remember_person(person_id, _part(r, "p_", people)
                                           if r["p_id"] is not None else None)
            status = self._duty(person_id, r["d_off"], r["d_until"]) \
                if r["d_person_id"] is not None else None
            self.sql.remember(("duty", person_id), _DUTY_TABLES, status)
            named[person_id] = (person, status)
        # The people named and their duty go along: routing asks for them next.
        self.sql.remember_org(("roster", microgrid), _ROSTER_TABLES,
                              (tuple(entries), tuple(found), named))
        return entries, found

    async def rosters_of(self, person_id: str) -> list[str]:
        rows = await self.sql.all(_ROSTERS_OF, {"person_id": person_id})
        return [r["microgrid"] for r in rows]

    async def duty(self, person_id: str) -> DutyStatus | None:
        known, found = self.sql.recall(("duty", person_id))
        if known:
            return cast(DutyStatus | None, found)
        row = await self.sql.one(_DUTY, {"person_id": person_id})
        status = None if row is None else self._duty(person_id, row["off"], row["until"])
        return cast(DutyStatus | None,
                    self.sql.remember(("duty", person_id), _DUTY_TABLES, status))

    def _duty(self, person_id: str, off: Any, until: Any) -> DutyStatus:
        return DutyStatus(person_id=person_id, off=bool(off), until=self.rows.read(until))

    async def set_duty(self, status: DutyStatus, now: datetime) -> None:
        await self.sql.run(_set_duty(self.dialect), {
            "person_id": status.person_id, "off": status.off,
            "until": self.at(status.until), "changed_at": self.at(now)})

    # -- accounts, chats and link codes ---------------------------------------------
    async def account(self, platform: str, user_id: str) -> Account | None:
        known, found = self.sql.recall(("account", platform, user_id))
        if known:
            return cast(Account | None, found)
        row = await self.sql.one(_ACCOUNT, {"platform": platform, "user_id": user_id})
        return cast(Account | None, self.sql.remember(
            ("account", platform, user_id), _ACCOUNT_TABLES,
            self.rows.account(row) if row else None))

    async def save_account(self, account: Account, now: datetime) -> None:
        await self.sql.run(_save_account(self.dialect), {
            "platform": account.platform, "user_id": account.user_id,
            "display_name": account.display_name, "person_id": account.person_id,
            "private_chat_id": account.private_chat_id, "linked_at": self.at(now)})

    async def accounts_of(self, person_id: str) -> list[Account]:
        known, found = self.sql.recall(("accounts_of", person_id))
        if known:
            return list(found)
        found = []
        for r in await self.sql.all(_ACCOUNTS_OF, {"person_id": person_id}):
            account = self.rows.account(r)
            found.append(account)
            if account.private_chat_id:  # asked next: does it still reach them?
                self.sql.remember(
                    ("chat", account.platform, account.private_chat_id), _CHAT_TABLES,
                    self.rows.chat(_part(r, "c_", chats)) if r["c_platform"] is not None
                    else None)
        self.sql.remember(("accounts_of", person_id), _ACCOUNTS_OF_TABLES, found)
        return list(found)

    async def chat(self, platform: str, chat_id: str) -> Chat | None:
        known, found = self.sql.recall(("chat", platform, chat_id))
        if known:
            return cast(Chat | None, found)
        row = await self.sql.one(_CHAT, {"platform": platform, "chat_id": chat_id})
        return cast(Chat | None, self.sql.remember(
            ("chat", platform, chat_id), _CHAT_TABLES, self.rows.chat(row) if row else None))

    async def save_chat(self, chat: Chat, *, bound_by: str | None, now: datetime) -> None:
        await self.sql.run(_save_chat(self.dialect), {
            "platform": chat.platform, "chat_id": chat.chat_id, "kind": chat.kind.value,
            "title": chat.title, "microgrid": chat.microgrid, "bound_by": bound_by,
            "bound_at": self.at(now) if bound_by else None})

    async def set_chat_unreachable(self, platform: str, chat_id: str, *,
                                   at: datetime | None, reason: str = "") -> None:
        await self.sql.run(_UNREACHABLE, {
            "platform": platform, "chat_id": chat_id, "unreachable_at": self.at(at),
            "unreachable_reason": reason if at is not None else ""})

    async def group_chats(self, microgrid: str) -> list[Chat]:
        return [self.rows.chat(r) for r in await self.sql.all(_GROUPS, {"microgrid": microgrid})]

    async def add_link_code(
        self, code_hash: str, person_id: str, now: datetime, expires_at: datetime
    ) -> None:
        await self.sql.run(_ADD_LINK_CODE, {
            "code_hash": code_hash, "person_id": person_id, "created_at": self.at(now),
            "expires_at": self.at(expires_at)})

    async def link_code(self, code_hash: str) -> LinkCode | None:
        row = await self.sql.one(_LINK_CODE, {"code_hash": code_hash})
        if row is None:
            return None
        return LinkCode(person_id=row["person_id"],
                        expires_at=self.rows.instant(row["expires_at"]),
                        used_at=self.rows.read(row["used_at"]))

    async def use_link_code(self, code_hash: str, now: datetime, used_by: str) -> None:
        await self.sql.run(_USE_LINK_CODE, {"code_hash": code_hash, "used_at": self.at(now),
                                            "used_by": used_by})
