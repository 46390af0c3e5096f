"""Planning the changes: the checked rows meet the configuration.

A sheet describes whole communities. Each of its tables replaces, for every community
it mentions, what was imported there before: the org table the community's grids and
micro-grids, the staff table its people and rosters, the households table its
households. Other communities are left alone, so each community office may import its
own sheet. Re-importing the same sheet changes nothing. Nothing is planned unless every
row is right and the resulting configuration passes the same checks as
``gridbot check-config``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridbot.config import Config, parse_config
from gridbot.domain import Role
from gridbot.errors import ConfigError
from gridbot.importing.problems import ImportFailed, Problem
from gridbot.importing.rows import (
    PRIMARY_WORDS,
    Imported,
    person_id,
    read_households,
    read_org,
    read_staff,
)
from gridbot.importing.sheets import Table
from gridbot.importing.toml_block import block_entries, render_block, split_block
from gridbot.store.base import Household


@dataclass(frozen=True, kw_only=True)
class Change:
    kind: str  # community, grid, microgrid, person, roster
    op: str  # "+", "~", "-"
    key: str
    name: str
    #: for "~": (field, before, after)
    fields: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class Plan:
    config_path: Path
    old_text: str
    new_text: str
    config: Config
    changes: tuple[Change, ...]
    households_added: tuple[Household, ...]
    households_changed: tuple[Household, ...]
    households_removed: tuple[tuple[str, str, str, str], ...]
    households_total: int
    rows: dict[str, int]
    warnings: tuple[tuple[str, str], ...]
    skipped: tuple[str, ...]

    @property
    def config_changed(self) -> bool:
        return self.new_text != self.old_text

    @property
    def households_changed_any(self) -> bool:
        return bool(self.households_added or self.households_changed
                    or self.households_removed)

    @property
    def nothing(self) -> bool:
        return not self.config_changed and not self.households_changed_any

    def count(self, kind: str, op: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind and c.op == op)



def plan_import(config_path: Path, tables: Sequence[Table], existing: Sequence[Household],
                skipped: Sequence[str] = ()) -> Plan:
    """Check the tables against the configuration and work out every change.

    ``existing`` are the stored households of the communities the households tables
    speak for (the caller reads them; see :func:`household_scope`). Raises
    :class:`ImportFailed` with every problem found.
    """
    problems: list[Problem] = []
    out = Imported()
    for table in tables:
        {"org": read_org, "staff": read_staff, "households": read_households}[table.kind](
            table, out, problems)
    old_text = config_path.read_text(encoding="utf-8-sig")
    manual_text, block, position = split_block(old_text)
    try:
        manual = tomllib.loads(manual_text)
        old = block_entries(block)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", "", f"valid TOML ({exc})", str(config_path)) from None

    def codes(data: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
        return {str(item.get("code")): item for item in data.get(key, [])
                if isinstance(item, dict)}

    manual_units = {**codes(manual, "communities"), **codes(manual, "grids"),
                    **codes(manual, "microgrids")}
    subdistrict = str(manual.get("subdistrict", {}).get("code", ""))
    manual_units[subdistrict] = {"code": subdistrict}
    org_tables = [t for t in tables if t.kind == "org"]
    for table in org_tables:
        for number, row in table.rows:
            for name in ("community_code", "grid_code", "microgrid_code"):
                code = table.cell(row, name)
                if code in manual_units:
                    problems.append(table.where(number, name, "manual_unit", code,
                                                config_path.name))

    # The tree after the import: manual units, old block units outside the sheet's
    # communities, and the sheet's units.
    old_grid_community = {g["code"]: g.get("community") for g in old["grids"]}
    old_grid_community.update({c: g.get("community") for c, g in codes(manual, "grids").items()})

    def old_community_of_microgrid(mg: dict[str, Any]) -> str:
        return str(old_grid_community.get(mg.get("grid"), ""))

    new_communities = _merge(old["communities"], list(out.communities.values()),
                             lambda c: c["code"] in out.org_scope)
    new_grids = _merge(old["grids"], list(out.grids.values()),
                       lambda g: g.get("community") in out.org_scope)
    new_microgrids = _merge(old["microgrids"], list(out.microgrids.values()),
                            lambda m: old_community_of_microgrid(m) in out.org_scope)

    parent: dict[str, str] = {}
    kind_of: dict[str, str] = {subdistrict: "subdistrict"}
    for c in [*manual.get("communities", []), *new_communities]:
        parent[c["code"]], kind_of[c["code"]] = subdistrict, "community"
    for g in [*manual.get("grids", []), *new_grids]:
        parent[g["code"]], kind_of[g["code"]] = g.get("community", ""), "grid"
    for m in [*manual.get("microgrids", []), *new_microgrids]:
        parent[m["code"]], kind_of[m["code"]] = m.get("grid", ""), "microgrid"

    def community_of(code: str) -> str:
        seen = 0
        while code and kind_of.get(code) not in ("community", "subdistrict") and seen < 5:
            code, seen = parent.get(code, ""), seen + 1
        return code if kind_of.get(code) in ("community", "subdistrict") else ""

    wanted_kind = {Role.RESIDENT.value: "microgrid", Role.STEWARD.value: "microgrid",
                   Role.GRID_LEADER.value: "grid", Role.COMMUNITY_STAFF.value: "community",
                   Role.SUBDISTRICT_ADMIN.value: "subdistrict"}
    manual_people = {str(p.get("name")): p for p in manual.get("people", [])
                     if isinstance(p, dict)}
    manual_ids = {str(p.get("id")) for p in manual_people.values()}
    old_ids_by_name = {p["name"]: p["id"] for p in old["people"]}
    for person in out.people:
        table, number = out.duty[person["id"]][0], person["_row"]
        unit = person["unit"]
        if kind_of.get(unit) != wanted_kind[person["role"]]:
            problems.append(table.where(number, "unit", "bad_unit", unit,
                                        wanted_kind[person["role"]]))
            continue
        out.staff_scope.add(community_of(unit))
        if person["name"] in manual_people:
            problems.append(table.where(number, "name", "manual_person", person["name"],
                                        config_path.name))
        if person["id"] == person_id(person["name"]) and person["name"] in old_ids_by_name:
            # keep the id the person's chat account is linked with
            out.duty[old_ids_by_name[person["name"]]] = out.duty.pop(person["id"])
            person["id"] = old_ids_by_name[person["name"]]
        if person["id"] in manual_ids:
            problems.append(table.where(number, "id", "manual_person", person["id"],
                                        config_path.name))

    def person_community(p: dict[str, Any]) -> str:
        return community_of(str(p.get("unit", "")))

    new_people = _merge(old["people"], out.people,
                        lambda p: person_community(p) in out.staff_scope)
    sheet_rosters = _rosters(out, kind_of, problems)
    new_rosters = _merge(old["rosters"], sheet_rosters,
                         lambda r: community_of(str(r.get("microgrid", ""))) in out.staff_scope)
    manual_rosters = {str(r.get("microgrid")) for r in manual.get("rosters", [])}
    for roster in sheet_rosters:
        if roster["microgrid"] in manual_rosters:
            steward = next(p for p in out.people if p["id"] == roster["primary"])
            table = out.duty[steward["id"]][0]
            problems.append(table.where(steward["_row"], "unit", "manual_roster",
                                        roster["microgrid"], config_path.name))

    # Households: every row's micro-grid must be in the tree; keys are unique.
    seen_keys: dict[tuple[str, str, str, str], tuple[Table, int]] = {}
    incoming: list[Household] = []
    for table, number, household in out.households:
        if kind_of.get(household.microgrid) != "microgrid":
            problems.append(table.where(number, "microgrid", "no_microgrid",
                                        household.microgrid))
            continue
        if household.key in seen_keys:
            problems.append(table.repeats(number, "room", "duplicate_household",
                                          " ".join(x for x in household.key[1:] if x),
                                          seen_keys[household.key]))
            continue
        seen_keys[household.key] = (table, number)
        out.household_scope.add(community_of(household.microgrid))
        incoming.append(household)

    if problems:
        raise ImportFailed(sorted(problems, key=_problem_order))

    entries = {"communities": new_communities, "grids": new_grids,
               "microgrids": new_microgrids, "people": new_people, "rosters": new_rosters}
    entries = {k: [{f: v for f, v in item.items() if not f.startswith("_")} for item in items]
               for k, items in entries.items()}
    if entries == old and block:
        new_block = block  # same content: keep the text (and the source line) as it was
    elif any(entries.values()):
        sources = ", ".join(dict.fromkeys(t.file for t in tables))
        new_block = render_block(entries, sources)
    else:
        new_block = ""
    if block:
        new_text = manual_text[:position] + new_block + manual_text[position:]
    else:
        sep = "" if not manual_text or manual_text.endswith("\n\n") else (
            "\n" if manual_text.endswith("\n") else "\n\n")
        new_text = manual_text + (sep + new_block if new_block else "")
    try:
        config = parse_config(new_text, source=str(config_path), base_dir=config_path.parent,
                              secrets=False)  # only `gridbot run` needs the platforms
    except ConfigError as exc:
        raise ImportFailed([Problem(file=config_path.name, sheet="", row=None, column="",
                                    header="", code="config_invalid", value=str(exc))]) from None

    changes = _changes(old, entries)
    before = {h.key: h for h in existing}
    scope = {m.code for m in config.microgrids if community_of(m.code) in out.household_scope}
    added, changed = [], []
    for h in incoming:
        known = before.get(h.key)
        if known is None:
            added.append(h)
        elif known != h:
            changed.append(h)
    removed = sorted(k for k in before if k[0] in scope and k not in seen_keys)
    warnings = _warnings(config, out)
    return Plan(config_path=config_path, old_text=old_text, new_text=new_text, config=config,
                changes=tuple(changes), households_added=tuple(added),
                households_changed=tuple(changed), households_removed=tuple(removed),
                households_total=len(incoming), rows=dict(out.rows),
                warnings=tuple(warnings), skipped=tuple(skipped))


def _merge(old: list[dict[str, Any]], new: list[dict[str, Any]],
           replaced: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The old entries with those the sheet replaces swapped for the sheet's, in place, so
    that re-importing one community's sheet leaves the block's order as it was."""
    merged: list[dict[str, Any]] = []
    inserted = False
    for item in old:
        if not replaced(item):
            merged.append(item)
        elif not inserted:
            merged.extend(new)
            inserted = True
    if not inserted:
        merged.extend(new)
    return merged


def _problem_order(p: Problem) -> tuple[str, str, int, int, str]:
    return (p.file, p.sheet, p.row or 0, len(p.column), p.column)


def _rosters(out: Imported, kind_of: dict[str, str],
             problems: list[Problem]) -> list[dict[str, Any]]:
    """Who is on duty in each micro-grid with stewards in the staff table."""
    order: list[str] = []
    primary: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for person in out.people:
        if person["role"] != Role.STEWARD.value:
            continue
        table, number, backups, duty = out.duty[person["id"]]
        mg = person["unit"]
        if mg not in members:
            order.append(mg)
            members[mg] = []
        if duty in PRIMARY_WORDS:
            if mg in primary:
                earlier = next(p for p in out.people if p["id"] == primary[mg])
                problems.append(table.where(number, "duty", "two_primaries", mg,
                                            earlier["name"]))
            primary[mg] = person["id"]
        members[mg].append(person["id"])
    for person in out.people:
        if person["role"] == Role.RESIDENT.value:
            continue
        table, number, backups, _ = out.duty[person["id"]]
        for mg in backups:
            if kind_of.get(mg) != "microgrid":
                problems.append(table.where(number, "backup_for", "no_microgrid", mg))
                continue
            if mg not in members:
                order.append(mg)
                members[mg] = []
            if person["id"] not in members[mg]:
                members[mg].append(person["id"])
    rosters = []
    for mg in order:
        people = members[mg]
        first = primary.get(mg) or next(
            (p for p in people if any(x["id"] == p and x["unit"] == mg for x in out.people)),
            None)
        if first is None:
            continue  # only backups listed: the micro-grid's own roster lives elsewhere
        backups = [p for p in people if p != first]
        rosters.append({"microgrid": mg, "primary": first,
                        **({"backups": backups} if backups else {})})
    return rosters


def _changes(old: dict[str, list[dict[str, Any]]],
             new: dict[str, list[dict[str, Any]]]) -> list[Change]:
    changes: list[Change] = []
    for table, kind, key in (("communities", "community", "code"), ("grids", "grid", "code"),
                             ("microgrids", "microgrid", "code"), ("people", "person", "id"),
                             ("rosters", "roster", "microgrid")):
        before = {str(i.get(key)): i for i in old[table]}
        after = {str(i.get(key)): i for i in new[table]}
        for k, item in after.items():
            shown = {kk: v for kk, v in item.items() if not kk.startswith("_")}
            name = str(item.get("name", item.get("primary", "")))
            if k not in before:
                changes.append(Change(kind=kind, op="+", key=k, name=name))
            elif before[k] != shown:
                fields = tuple(
                    (f, _show(before[k].get(f)), _show(shown.get(f)))
                    for f in dict.fromkeys([*before[k], *shown])
                    if before[k].get(f) != shown.get(f))
                changes.append(Change(kind=kind, op="~", key=k, name=name, fields=fields))
        for k, item in before.items():
            if k not in after:
                changes.append(Change(kind=kind, op="-", key=k,
                                      name=str(item.get("name", item.get("primary", "")))))
    return changes


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _warnings(config: Config, out: Imported) -> list[tuple[str, str]]:
    """Things that are allowed but probably not meant."""
    warnings = []
    for code in out.microgrids:
        if code not in config.rosters:
            warnings.append(("no_roster", code))
    return warnings


def household_scope(tables: Sequence[Table], config_path: Path) -> list[str] | None:
    """The micro-grids whose stored households the households tables replace, worked out
    from the configuration as the import will leave it; None when there is no such table.

    Cheap to call before :func:`plan_import`: the caller reads those households from the
    store and passes them in.
    """
    if not any(t.kind == "households" for t in tables):
        return None
    mentioned: set[str] = set()
    for table in tables:
        if table.kind == "households":
            mentioned.update(table.cell(row, "microgrid") for _, row in table.rows)
    # The tree as it stands plus the sheet's own org tables.
    text = config_path.read_text(encoding="utf-8-sig")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return []
    grid_of = {m.get("code"): m.get("grid") for m in data.get("microgrids", [])}
    community_of = {g.get("code"): g.get("community") for g in data.get("grids", [])}
    for table in tables:
        if table.kind == "org":
            for _, row in table.rows:
                grid_of[table.cell(row, "microgrid_code")] = table.cell(row, "grid_code")
                community_of[table.cell(row, "grid_code")] = table.cell(row, "community_code")
    communities = {community_of.get(grid_of.get(m)) for m in mentioned} - {None}
    return sorted(m for m, g in grid_of.items() if community_of.get(g) in communities and m)
