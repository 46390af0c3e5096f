"""Checking the rows: each table's rows as the org tree, the people with their duty and
the households, every wrong cell a :class:`~gridbot.importing.problems.Problem`."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from gridbot.domain import Role
from gridbot.importing.problems import Problem
from gridbot.importing.sheets import COLUMNS, Table, fold
from gridbot.store.base import Household

_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{5,22}[0-9]$")

ROLE_WORDS: dict[str, Role] = {
    "微网管家": Role.STEWARD, "微网格员": Role.STEWARD, "微网格长": Role.STEWARD,
    "管家": Role.STEWARD, "楼栋长": Role.STEWARD, "steward": Role.STEWARD,
    "网格长": Role.GRID_LEADER, "网格员": Role.GRID_LEADER, "专职网格员": Role.GRID_LEADER,
    "gridleader": Role.GRID_LEADER, "grid_leader": Role.GRID_LEADER,
    "社区": Role.COMMUNITY_STAFF, "社区工作人员": Role.COMMUNITY_STAFF,
    "社工": Role.COMMUNITY_STAFF, "社区书记": Role.COMMUNITY_STAFF,
    "社区主任": Role.COMMUNITY_STAFF, "communitystaff": Role.COMMUNITY_STAFF,
    "community_staff": Role.COMMUNITY_STAFF,
    "街道": Role.SUBDISTRICT_ADMIN, "街道管理员": Role.SUBDISTRICT_ADMIN,
    "subdistrictadmin": Role.SUBDISTRICT_ADMIN, "subdistrict_admin": Role.SUBDISTRICT_ADMIN,
    "居民": Role.RESIDENT, "resident": Role.RESIDENT,
}
PRIMARY_WORDS = {"主班", "主责", "主", "primary"}
BACKUP_WORDS = {"备班", "备", "backup", ""}


# -- what the sheets say ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Imported:
    """The sheets' content, checked row by row, before it meets the configuration."""

    communities: dict[str, dict[str, Any]] = field(default_factory=dict)
    grids: dict[str, dict[str, Any]] = field(default_factory=dict)
    microgrids: dict[str, dict[str, Any]] = field(default_factory=dict)
    people: list[dict[str, Any]] = field(default_factory=list)
    #: person id -> (table, row number, micro-grids they back up, primary mark)
    duty: dict[str, tuple[Table, int, list[str], str]] = field(default_factory=dict)
    households: list[tuple[Table, int, Household]] = field(default_factory=list)
    #: where each micro-grid code, person name and household was first seen
    first_microgrid: dict[str, tuple[Table, int]] = field(default_factory=dict)
    first_name: dict[str, tuple[Table, int]] = field(default_factory=dict)
    #: communities each kind of table speaks for
    org_scope: set[str] = field(default_factory=set)
    staff_scope: set[str] = field(default_factory=set)
    household_scope: set[str] = field(default_factory=set)
    rows: dict[str, int] = field(default_factory=dict)


def _code(table: Table, number: int, row: list[Any], name: str,
          problems: list[Problem]) -> str:
    value = table.cell(row, name)
    if not value:
        problems.append(table.where(number, name, "empty"))
    elif not _CODE.match(value):
        problems.append(table.where(number, name, "bad_code", value))
        return ""
    return value


def _required(table: Table, number: int, row: list[Any], name: str,
              problems: list[Problem], limit: int = 60) -> str:
    value = table.cell(row, name)
    if not value:
        problems.append(table.where(number, name, "empty"))
    elif len(value) > limit:
        problems.append(table.where(number, name, "too_long", value[:20] + "…", str(limit)))
    return value


def _tags(text: str) -> list[str]:
    return [t for t in re.split(r"[,，、;；/\s]+", text) if t]


def person_id(name: str) -> str:
    """A stable id for a person the sheet gives none: from the name, which is unique."""
    return "p" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]


def read_org(table: Table, out: Imported, problems: list[Problem]) -> None:
    seen = out.first_microgrid
    for number, row in table.rows:
        c_code = _code(table, number, row, "community_code", problems)
        c_name = _required(table, number, row, "community", problems)
        g_code = _code(table, number, row, "grid_code", problems)
        g_name = _required(table, number, row, "grid", problems)
        m_code = _code(table, number, row, "microgrid_code", problems)
        m_name = _required(table, number, row, "microgrid", problems)
        tags = _tags(table.cell(row, "tags"))
        if not all((c_code, c_name, g_code, g_name, m_code, m_name)):
            continue
        if m_code in seen:
            problems.append(table.repeats(number, "microgrid_code", "duplicate", m_code,
                                          seen[m_code]))
            continue
        seen[m_code] = (table, number)
        community = out.communities.setdefault(c_code, {"code": c_code, "name": c_name})
        if community["name"] != c_name:
            problems.append(table.where(number, "community", "inconsistent", c_name,
                                        community["name"]))
        grid = out.grids.setdefault(g_code, {"code": g_code, "name": g_name,
                                             "community": c_code})
        if grid["name"] != g_name:
            problems.append(table.where(number, "grid", "inconsistent", g_name, grid["name"]))
        if grid["community"] != c_code:
            problems.append(table.where(number, "community_code", "grid_elsewhere", g_code,
                                        grid["community"]))
        out.microgrids[m_code] = {"code": m_code, "name": m_name, "grid": g_code,
                                  **({"tags": tags} if tags else {})}
        out.org_scope.add(c_code)
    out.rows[table.kind] = out.rows.get(table.kind, 0) + len(table.rows)


def read_staff(table: Table, out: Imported, problems: list[Problem]) -> None:
    rows_by_name = out.first_name
    ids = {p["id"] for p in out.people}
    for number, row in table.rows:
        name = _required(table, number, row, "name", problems, limit=40)
        role_text = table.cell(row, "role")
        role = ROLE_WORDS.get(fold(role_text)) if role_text else None
        if not role_text:
            problems.append(table.where(number, "role", "empty"))
        elif role is None:
            problems.append(table.where(number, "role", "bad_role", role_text))
        unit = _code(table, number, row, "unit", problems)
        pid = table.cell(row, "id")
        if pid and not _CODE.match(pid):
            problems.append(table.where(number, "id", "bad_code", pid))
        phone = table.cell(row, "phone")
        if phone and not _PHONE.match(phone):
            problems.append(table.where(number, "phone", "bad_phone", phone))
        locale = table.cell(row, "locale")
        if locale and locale not in ("zh-CN", "en"):
            problems.append(table.where(number, "locale", "bad_locale", locale))
        duty = table.cell(row, "duty")
        if fold(duty) not in PRIMARY_WORDS | BACKUP_WORDS:
            problems.append(table.where(number, "duty", "bad_duty", duty))
        backups = _tags(table.cell(row, "backup_for"))
        for code in backups:
            if not _CODE.match(code):
                problems.append(table.where(number, "backup_for", "bad_code", code))
        if name in rows_by_name:
            problems.append(table.repeats(number, "name", "duplicate", name,
                                          rows_by_name[name]))
            continue
        if not (name and role and unit):
            continue
        pid = pid or person_id(name)
        if pid in ids:
            problems.append(table.where(number, "id", "duplicate", pid))
            continue
        rows_by_name[name] = (table, number)
        ids.add(pid)
        person: dict[str, Any] = {"id": pid, "name": name, "role": role.value, "unit": unit}
        if phone:
            person["phone"] = phone
        if address := table.cell(row, "address"):
            person["address"] = address
        if locale:
            person["locale"] = locale
        person["_row"] = number
        out.people.append(person)
        out.duty[pid] = (table, number, backups, fold(duty))
    out.rows[table.kind] = out.rows.get(table.kind, 0) + len(table.rows)


def read_households(table: Table, out: Imported, problems: list[Problem]) -> None:
    get = {name: table.getter(name) for name in COLUMNS["households"]}
    for number, row in table.rows:
        microgrid = get["microgrid"](row)
        if not microgrid:
            problems.append(table.where(number, "microgrid", "empty"))
        elif not _CODE.match(microgrid):
            problems.append(table.where(number, "microgrid", "bad_code", microgrid))
            microgrid = ""
        building, room = get["building"](row), get["room"](row)
        for name, value in (("building", building), ("room", room)):
            if not value:
                problems.append(table.where(number, name, "empty"))
            elif len(value) > 30:
                problems.append(table.where(number, name, "too_long", value[:20] + "…", "30"))
        phone = get["phone"](row)
        if phone and not _PHONE.match(phone):
            problems.append(table.where(number, "phone", "bad_phone", phone))
        members_text = get["members"](row)
        members = None
        if members_text:
            if members_text.isdigit() and int(members_text) <= 100:
                members = int(members_text)
            else:
                problems.append(table.where(number, "members", "bad_members", members_text))
        if not (microgrid and building and room) or len(building) > 30 or len(room) > 30:
            continue
        tags = get["tags"](row)
        out.households.append((table, number, Household(
            microgrid=microgrid, building=building, entrance=get["entrance"](row), room=room,
            head=get["head"](row), phone=phone, members=members,
            tags=tuple(_tags(tags)) if tags else (), note=get["note"](row))))
    out.rows[table.kind] = out.rows.get(table.kind, 0) + len(table.rows)
