"""The console put together: its app (:mod:`gridbot.console.app`) with every page
(:mod:`gridbot.console.pages`), and the residents' pages (:mod:`gridbot.residents`), for
``gridbot run`` and the demo."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute

from gridbot.adapters.base import Adapter, Intake
from gridbot.console import pages
from gridbot.console.app import Console
from gridbot.console.settings import WebSettings
from gridbot.engine import Engine


def console(engine: Engine, intake: Intake, settings: WebSettings,
            adapters: Sequence[Adapter] = ()) -> tuple[Console, list[BaseRoute]]:
    """The console over ``engine`` and the routes that serve it (``adapters``: the
    platforms whose evidence its case pages show)."""
    served = Console(engine, intake, settings, adapters={a.name: a for a in adapters})
    routes = served.routes(pages.ROUTES)
    if settings.residents:
        # The residents' pages (report by link or QR code) beside it, on the same engine.
        from gridbot.residents import pages as resident_pages
        from gridbot.residents.app import Residents

        served.residents = Residents(served)
        routes += served.residents.routes(resident_pages.ROUTES, resident_pages.PLAIN)
    return served, routes
