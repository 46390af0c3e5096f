"""Every page of the console, as (path, handler, methods, acts): ``acts`` for those that go
through the engine (see :meth:`gridbot.console.app.Console._page`)."""

from __future__ import annotations

from gridbot.console import audit, board, case, figures, notices, people
from gridbot.console.app import PageRoute

ROUTES: list[PageRoute] = [
    *board.ROUTES,
    *case.ROUTES,
    *notices.ROUTES,
    *figures.ROUTES,
    *audit.ROUTES,
    *people.ROUTES,
]
