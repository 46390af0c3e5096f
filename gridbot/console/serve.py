"""The console put together: its app (:mod:`gridbot.console.app`) with every page
(:mod:`gridbot.console.pages`), for ``gridbot run`` and the demo."""

from __future__ import annotations

from starlette.routing import BaseRoute

from gridbot.adapters.base import Intake
from gridbot.console import pages
from gridbot.console.app import Console
from gridbot.console.settings import WebSettings
from gridbot.engine import Engine


def console(engine: Engine, intake: Intake,
            settings: WebSettings) -> tuple[Console, list[BaseRoute]]:
    """The console over ``engine`` and the routes that serve it."""
    served = Console(engine, intake, settings)
    return served, served.routes(pages.ROUTES)
