"""Where a report is, who may know who made it, and whether it is news: the rules of
issue 20's buildings and rooms, duplicates, incidents and anonymity, shared by the
handlers.

* **Buildings** (:func:`locate`): an address in the words (``3幢2单元201``) is read by
  :mod:`gridbot.policy.addresses`; a building that a micro-grid of the same community
  lists in its ``buildings`` takes the report there, whatever group it was said in, and
  the household ledger of that community confirms (or finds) the micro-grid.
* **Duplicates** (:func:`find_duplicate`): an open case of the last ``[policy]
  duplicate_hours``, of the same category, in the same building (or micro-grid, when
  either says no building), whose words are alike (:mod:`gridbot.policy.duplicates`).
  A category that may become an incident is not offered as a duplicate while reports of
  it arrive within ``incident_minutes`` of each other: a burst is counted, not held back.
* **Incidents** (:func:`group_incident`): ``incident_reports`` reports of one category
  across a community within ``incident_minutes`` become one incident: the earliest case
  leads it, the others wait on it with no clock of their own, and resolving the lead
  resolves them all, each reporter told.
* **Anonymity** (:func:`anonymity`): 匿名 in the command, or the community's default.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridbot.context import Context
from gridbot.domain import OPEN_STATUSES, Case, Community, Role, Status
from gridbot.policy.addresses import Address, match_household, microgrid_of_building
from gridbot.policy.deadlines import window_changes
from gridbot.policy.duplicates import similarity
from gridbot.store.base import Household

#: what 匿名 asks for, and what the community may widen it to
NEIGHBOURS = "neighbours"
EVERYONE = "everyone"
#: the words that make a report anonymous when they start it
ANONYMOUS_WORDS = ("匿名", "anonymous", "anonymously")


def take_anonymous(text: str) -> tuple[bool, str]:
    """``报事 匿名 …`` / ``report anonymous …``: whether it asks, and the words left."""
    stripped = text.strip()
    for word in ANONYMOUS_WORDS:
        if stripped.lower().startswith(word):
            rest = stripped[len(word):]
            if word.isascii() and rest[:1].isalpha():
                continue  # "anonymousness…" is no request
            return True, rest.lstrip(" \t:：,，、-—()（）【】[]").strip()
    return False, text


async def community_of(ctx: Context, microgrid: str) -> Community | None:
    """The community a micro-grid belongs to (from the configuration)."""
    unit = ctx.config.microgrid(microgrid)
    grid = ctx.config.grid(unit.grid) if unit is not None else None
    return ctx.config.community(grid.community) if grid is not None else None


def community_microgrids(ctx: Context, community: str) -> list[str]:
    grids = {g.code for g in ctx.config.grids if g.community == community}
    return [m.code for m in ctx.config.microgrids if m.grid in grids]


def anonymity(community: Community | None, asked: bool) -> str:
    """The case's ``anonymous`` value: "" named, or whom the name is hidden from."""
    if not asked and not (community is not None and community.anonymous_default):
        return ""
    return EVERYONE if community is not None and community.anonymous_to_handler \
        else NEIGHBOURS


@dataclass(frozen=True, kw_only=True)
class Place:
    """Where a report is: the address read from it, its micro-grid, and the household
    of the ledger it names (if exactly one)."""

    address: Address
    microgrid: str
    household: Household | None = None
    #: the building took the report away from the micro-grid it was said in
    moved: bool = False


async def locate(ctx: Context, address: Address | None, home: str) -> Place:
    """The micro-grid a report about ``address`` belongs to, said from ``home``'s group
    (or by a resident of ``home``): the one of the same community listing its building,
    else the one whose ledger holds the household, else ``home``."""
    if address is None or not address.building:
        return Place(address=address or Address(), microgrid=home)
    community = await community_of(ctx, home)
    microgrids = community_microgrids(ctx, community.code) if community else [home]
    owners = [(m.code, b) for m in ctx.config.microgrids if m.code in microgrids
              for b in m.buildings]
    target = microgrid_of_building(address.building, owners)
    # Only an address with a room can name a household: without one the ledger is not
    # read (a report of the building's stairs or lift, most of them).
    household = match_household(address, await ctx.tx.households(
        [target] if target else microgrids)) if address.room else None
    if target is None:
        target = household.microgrid if household is not None else home
    return Place(address=address, microgrid=target, household=household,
                 moved=target != home)


async def find_duplicate(ctx: Context, *, microgrid: str, address: Address,
                         category: str, text: str) -> Case | None:
    """The open case the new report most looks like, if any is alike enough."""
    policy = ctx.config.policy
    if policy.duplicate_window.total_seconds() <= 0:
        return None
    if await recent_alike(ctx, microgrid, category):
        # A burst of one kind (停电 across the estate) is counted towards an incident,
        # report by report, rather than offered as duplicates one by one.
        return None
    since = ctx.now - policy.duplicate_window
    best: tuple[float, Case] | None = None
    for case in await ctx.tx.recent_open_cases([microgrid], category, since=since):
        if case.merged_into:
            continue
        if case.incident is not None and case.incident != case.number:
            continue  # the incident's lead speaks for it
        if case.reporter_id == ctx.speaker.id:
            continue  # their own: no one to follow
        if address.building and case.building and address.building != case.building:
            continue
        score = similarity(text, case.text)
        if score >= policy.duplicate_similarity and (best is None or score > best[0]):
            best = (score, case)
    if best is None:
        return None
    case = best[1]
    if any(w.person_id == ctx.speaker.id for w in await ctx.tx.watchers(case.number)):
        return None  # already following it: a second report is theirs to make
    return case


async def affected(ctx: Context, case: Case) -> int:
    """How many people a case affects: its reporter and everyone following it."""
    return 1 + len(await ctx.tx.watchers(case.number))


# -- incidents ----------------------------------------------------------------------------------


async def open_incident(ctx: Context, case: Case) -> Case | None:
    """The open incident of the case's category and community (within the window) it
    should join, if any."""
    peers = await _recent_peers(ctx, case)
    leads = sorted({c.incident for c in peers if c.incident is not None})
    for number in leads:
        lead = await ctx.tx.case(number)
        if lead is not None and lead.status in OPEN_STATUSES:
            return lead
    return None


async def _recent_peers(ctx: Context, case: Case) -> list[Case]:
    return await recent_alike(ctx, case.microgrid, case.category, but=case.number)


async def recent_alike(ctx: Context, microgrid: str, category: str, *,
                       but: int = 0) -> list[Case]:
    """The open cases of ``category`` reported across the micro-grid's community within
    the incident window, if that category may become an incident (else none)."""
    policy = ctx.config.policy
    if policy.incident_reports <= 0 or (policy.incident_categories
                                        and category not in policy.incident_categories):
        return []
    community = await community_of(ctx, microgrid)
    microgrids = community_microgrids(ctx, community.code) if community else [microgrid]
    since = ctx.now - policy.incident_window
    return [c for c in await ctx.tx.recent_open_cases(microgrids, category, since=since)
            if c.merged_into is None and c.number != but]


async def join_incident(ctx: Context, case: Case, lead: Case) -> Case:
    """A new report of an incident under way: it waits on the lead, with its holder and
    no clock of its own; the lead's holder hears nothing more."""
    return await ctx.save(case, "incident_joined", data={"incident": lead.number},
                          incident=lead.number, status=Status.ASSIGNED,
                          assignee_id=lead.assignee_id, level=lead.level, claim_by=None,
                          resolve_by=None, window_start=None, active_at=None)


async def group_incident(ctx: Context, case: Case) -> Case | None:
    """Make an incident of the case and the recent reports like it, if there are enough:
    the earliest leads. Returns the lead, or ``None``."""
    peers = [c for c in await _recent_peers(ctx, case) if c.incident is None]
    if len(peers) + 1 < ctx.config.policy.incident_reports:
        return None
    members = sorted([*peers, case], key=lambda c: c.number)
    lead = await ctx.save(members[0], "incident_opened",
                          data={"reports": len(members)}, incident=members[0].number)
    for member in members[1:]:
        await ctx.save(member, "incident_joined", data={"incident": lead.number},
                       incident=lead.number, claim_by=None, resolve_by=None,
                       window_start=None, active_at=None)
    return lead


async def hand_on_incident(ctx: Context, lead: Case) -> Case | None:
    """The lead of an incident was withdrawn (撤销): the earliest report still open leads
    it from now on, with the windows of a new report, so the others do not wait on a case
    nobody works on. The new lead, or ``None`` if none is left."""
    if lead.incident != lead.number:
        return None
    members = [c for c in await ctx.tx.incident_cases(lead.number)
               if c.number != lead.number and c.status in OPEN_STATUSES]
    if not members:
        return None
    new = members[0]
    windows = window_changes(ctx.config.policy, ctx.calendar, new, ctx.now, new.level)
    new = await ctx.save(new, "incident_opened", data={"reports": len(members),
                                                       "after": lead.number},
                         incident=new.number, **windows)
    for member in members[1:]:
        await ctx.save(member, "incident_joined", data={"incident": new.number},
                       incident=new.number)
    return new


async def incident_staff(ctx: Context, lead: Case) -> list[str]:
    """Who hears of a new incident: the community's staff, and whoever holds the lead."""
    community = await community_of(ctx, lead.microgrid)
    people = [p.id for p in await ctx.tx.people_in_role(Role.COMMUNITY_STAFF, community.code)
              ] if community is not None else []
    if lead.assignee_id and lead.assignee_id not in people:
        people.append(lead.assignee_id)
    return people
