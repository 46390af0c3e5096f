"""Every residents' page, in one list (:meth:`gridbot.residents.app.Residents.routes`)."""

from __future__ import annotations

from gridbot.residents import case, notice, oauth, report
from gridbot.residents.app import PlainRoute, VisitRoute

#: pages under a micro-grid's link: (path after the link, handler, methods, acts)
ROUTES: list[VisitRoute] = [*report.ROUTES, *case.ROUTES, *notice.ROUTES]
#: routes outside any link
PLAIN: list[PlainRoute] = [*oauth.ROUTES]
