"""Every page of the console, as (path, handler, methods, acts): ``acts`` for those that go
through the engine (see :meth:`gridbot.console.app.Console._page`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.responses import Response

from gridbot.console import audit, board, case, figures, notices, people
from gridbot.console.app import Page

Route = tuple[str, Callable[[Page], Awaitable[Response]], Sequence[str], bool]

ROUTES: list[Route] = [
    *board.ROUTES,
    *case.ROUTES,
    *notices.ROUTES,
    *figures.ROUTES,
    *audit.ROUTES,
    *people.ROUTES,
]
