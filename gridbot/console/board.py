"""工作台 Board: the cases in the person's scope, filtered, the nearest deadline first, with
the counts per state at the top; its rows refresh by themselves (``/board/rows``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import HTMLResponse, Response

from gridbot.console.app import Page
from gridbot.domain import Case, Person, Priority, Status
from gridbot.policy.permissions import scope
from gridbot.store.base import BoardQuery, Transaction

PAGE_SIZE = 50
#: the furthest page a board goes (50 a page: 10,000 cases; search to find older ones)
MAX_PAGE = 200
#: the order states are counted and offered in
STATES = (Status.NEW, Status.ASSIGNED, Status.REOPENED, Status.CLAIMED, Status.RESOLVED,
          Status.CLOSED, Status.CANCELLED)


@dataclass(frozen=True, kw_only=True)
class Filters:
    """The board's filters as the query string gives them; anything unreadable is left out."""

    states: tuple[Status, ...] = ()
    overdue: bool = False
    levels: tuple[int, ...] = ()
    microgrids: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    #: a person id, "none" for nobody, "" for anyone
    handler: str = ""
    text: str = ""
    page: int = 1

    @classmethod
    def read(cls, params: Any) -> Filters:
        def many(name: str) -> list[str]:
            return [v.strip() for v in params.getlist(name) if v.strip()][:50]

        states = tuple(Status(v) for v in many("state") if v in Status.__members__.values())
        levels = tuple(int(v) for v in many("level") if v in ("0", "1", "2", "3"))
        priorities = tuple(v for v in many("priority") if v in Priority.__members__.values())
        page = params.get("page", "1")
        return cls(states=states, overdue=params.get("overdue") == "1", levels=levels,
                   microgrids=tuple(v[:40] for v in many("microgrid")),
                   categories=tuple(v[:40] for v in many("category")),
                   priorities=priorities, handler=params.get("handler", "")[:80],
                   text=" ".join(params.get("q", "").split())[:100],
                   page=min(int(page), MAX_PAGE) if page.isdigit() and int(page) > 0 else 1)

    def query(self) -> dict[str, Any]:
        """The query string that gives these filters back (links, paging, refreshing)."""
        return {"state": [s.value for s in self.states], "overdue": "1" if self.overdue else "",
                "level": [str(n) for n in self.levels], "microgrid": list(self.microgrids),
                "category": list(self.categories), "priority": list(self.priorities),
                "handler": self.handler, "q": self.text}


@dataclass(frozen=True, kw_only=True)
class Board:
    filters: Filters
    cases: list[Case]
    counts: dict[Status, int]
    overdue: int
    names: dict[str, str]
    #: the micro-grids this person may look at, in the order of the configuration
    scope: list[str]
    more: bool


async def load(tx: Transaction, person: Person, filters: Filters, *, now: Any,
               microgrid_order: list[str]) -> Board:
    own = await scope(tx, person)
    ordered = [code for code in microgrid_order if code in own]
    chosen = tuple(c for c in filters.microgrids if c in own) or tuple(ordered)
    if filters.microgrids and not set(filters.microgrids) & own:
        chosen = ()  # only micro-grids outside the scope were asked for: nothing
    holder = person.id if not filters.microgrids else None
    handler: str | None = None
    if filters.handler == "none":
        handler = ""
    elif filters.handler:
        handler = filters.handler
    base = BoardQuery(microgrids=chosen, holder=holder, levels=filters.levels,
                      categories=filters.categories, priorities=filters.priorities,
                      assignee=handler, text=filters.text)
    query = BoardQuery(**{**base.__dict__, "statuses": frozenset(filters.states),
                          "open_only": not filters.states,
                          "overdue_at": now if filters.overdue else None,
                          "limit": PAGE_SIZE + 1,
                          "offset": (filters.page - 1) * PAGE_SIZE})
    view = await tx.board_view(query, now)
    found, counts, overdue = view.cases, view.counts, view.late
    names: dict[str, str] = {}
    for case in found[:PAGE_SIZE]:
        if case.assignee_id and case.assignee_id not in names:
            someone = await tx.person(case.assignee_id)
            names[case.assignee_id] = someone.name if someone else case.assignee_id
    return Board(filters=filters, cases=found[:PAGE_SIZE], counts=counts, overdue=overdue,
                 names=names, scope=ordered, more=len(found) > PAGE_SIZE)


async def _board(page: Page, template: str) -> Response:
    filters = Filters.read(page.request.query_params)
    order = [m.code for m in page.console.config.microgrids]
    board = await load(page.tx, page.person, filters, now=page.console.now(),
                       microgrid_order=order)
    handlers = _handlers(page, board.scope)
    said = await page.console.answers(page)
    return page.render(template, board=board, states=STATES, handlers=handlers, said=said,
                       categories=page.console.config.policy.categories)


def _handlers(page: Page, microgrids: list[str]) -> list[Person]:
    """The people a case in these micro-grids may be held by, for the filter."""
    people = [p for p in page.console.config.people
              if p.role.rank >= 0 and (p.unit in microgrids or p.role.rank > 0)]
    return people[:200]


async def board(page: Page) -> Response:
    return await _board(page, "board.html.j2")


async def rows(page: Page) -> Response:
    """Only the counts and the rows, for the page to swap in when something changed."""
    response = await _board(page, "board_rows.html.j2")
    assert isinstance(response, HTMLResponse)
    return response


ROUTES = [
    ("/", board, ("GET",), False),
    ("/board/rows", rows, ("GET",), False),
]
