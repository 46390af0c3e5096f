"""``GET /metrics``: what the running bot is doing, in Prometheus' text format.

Two kinds of figures. Those about the work (cases by state, level and micro-grid; what is
overdue; the outbox per platform; notice deliveries; how late the deadline sweep is) are
read from the database at each scrape by :class:`DatabaseCollector`: the database holds
the truth, and every process sharing it shows the same. Those about this process (sends
by platform and outcome, platform pauses, how long handling each command took, the duties
it holds) are counted here as they happen, in a :class:`Meter` the engine and the outbox
report to.

The endpoint is off unless ``[metrics]`` sets a token (``Authorization: Bearer …``) or an
allow-list of client addresses; either one lets a scraper in.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gridbot.clock import Clock
from gridbot.meter import Meter
from gridbot.settings.fields import secret_value
from gridbot.store.base import Figures, Store
from gridbot.web_settings import MetricsSettings

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
#: how long a scrape waits for the database before saying it is unreachable
READ_TIMEOUT = 5.0
#: handler latency buckets, seconds: a command is a transaction or two and a few renders
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PrometheusMeter(Meter):
    """Counts into a registry of its own (one per runtime: tests run several)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sends = Counter("gridbot_sends", "Messages the outbox tried to send, by "
                             "platform and outcome", ["platform", "outcome"], registry=registry)
        self.pauses = Counter("gridbot_platform_pauses", "Times a platform asked the bot to "
                              "wait (paused: 429, 45009) or could not be reached (down)",
                              ["platform", "kind"], registry=registry)
        self.latency = Histogram("gridbot_handler_seconds", "Time to handle one incoming "
                                 "message, by command (chat: plain words)", ["command"],
                                 buckets=LATENCY_BUCKETS, registry=registry)

    def sent(self, platform: str, outcome: str) -> None:
        self.sends.labels(platform, outcome).inc()

    def paused(self, platform: str, kind: str) -> None:
        self.pauses.labels(platform, kind).inc()

    def handled(self, command: str, seconds: float) -> None:
        self.latency.labels(command).observe(seconds)


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


class DatabaseCollector(Collector):
    """The figures read from the database, as of the last :meth:`refresh`; and the state
    of this process (its duties, the platforms it holds back)."""

    def __init__(self, store: Store, clock: Clock, *,
                 platforms: Callable[[], Sequence[str]] = tuple,
                 duties: Callable[[], Mapping[str, bool]] = dict,
                 holds: Callable[[], Mapping[str, str]] = dict) -> None:
        self.store = store
        self.clock = clock
        self.platforms = platforms
        self.duties = duties
        self.holds = holds
        self.figures: Figures | None = None
        self.now = clock.now()
        self._turn = asyncio.Lock()

    async def refresh(self) -> None:
        """Read the figures now; ``None`` when the database does not answer."""
        now = self.clock.now()
        try:
            async with asyncio.timeout(READ_TIMEOUT), self.store.transaction() as tx:
                self.figures = await tx.figures(now)
        except Exception as exc:  # a scrape reports, it does not raise
            log.warning("metrics: the database did not answer: %s", exc)
            self.figures = None
        self.now = now

    @contextlib.asynccontextmanager
    async def scrape(self) -> AsyncIterator[None]:
        """Refresh and hold the figures while they are written out."""
        async with self._turn:
            await self.refresh()
            yield

    def collect(self) -> Iterator[Metric]:
        now, figures = self.now, self.figures
        up = GaugeMetricFamily("gridbot_database_up", "1 if the database answered this "
                               "scrape, 0 if not")
        up.add_metric([], 1 if figures is not None else 0)
        yield up
        platforms = sorted(set(self.platforms()) | set(
            figures.outbox_depth if figures else {}))
        holds = self.holds()
        held = GaugeMetricFamily("gridbot_platform_up", "0 while this process cannot reach "
                                 "the platform (down) or it asked to wait (paused), else 1",
                                 labels=["platform", "state"])
        for platform in sorted(set(self.platforms())):
            state = holds.get(platform, "up")
            held.add_metric([platform, state], 1 if state == "up" else 0)
        yield held
        duty = GaugeMetricFamily("gridbot_duty_held", "1 if this process holds the duty "
                                 "(send:PLATFORM, digest, receive:…)", labels=["duty"])
        for name, holding in sorted(self.duties().items()):
            duty.add_metric([name], 1 if holding else 0)
        yield duty
        if figures is None:
            return
        cases = GaugeMetricFamily("gridbot_cases", "Cases by state, level and micro-grid",
                                  labels=["state", "level", "microgrid"])
        for (state, level, microgrid), n in sorted(figures.cases.items()):
            cases.add_metric([state, str(level), microgrid], n)
        yield cases
        yield _gauge("gridbot_cases_overdue", "Open cases past their claim or resolve "
                     "deadline", figures.overdue)
        yield _gauge("gridbot_oldest_unclaimed_age_seconds", "Age of the oldest case nobody "
                     "has claimed (0: none)", _age(now, figures.oldest_unclaimed))
        yield _gauge("gridbot_deadline_sweep_lag_seconds", "Now minus the oldest deadline "
                     "step that is due and not yet taken (0: none)",
                     _age(now, figures.oldest_due_step))
        depth = GaugeMetricFamily("gridbot_outbox_depth", "Messages queued or being sent",
                                  labels=["platform"])
        age = GaugeMetricFamily("gridbot_outbox_oldest_age_seconds", "How long the oldest "
                                "message that should have gone has been queued (0: none)",
                                labels=["platform"])
        for platform in platforms:
            depth.add_metric([platform], figures.outbox_depth.get(platform, 0))
            age.add_metric([platform], _age(now, figures.outbox_oldest.get(platform)))
        yield depth
        yield age
        deliveries = GaugeMetricFamily("gridbot_notice_deliveries", "Notice deliveries to "
                                       "groups by state", labels=["state"])
        for state, n in sorted(figures.deliveries.items()):
            deliveries.add_metric([state], n)
        yield deliveries


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], value)
    return gauge


class Metrics:
    """The registry of one running bot: its meter and the database collector."""

    def __init__(self, store: Store, clock: Clock, *,
                 platforms: Callable[[], Sequence[str]] = tuple,
                 duties: Callable[[], Mapping[str, bool]] = dict,
                 holds: Callable[[], Mapping[str, str]] = dict) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.meter = PrometheusMeter(self.registry)
        self.collector = DatabaseCollector(store, clock, platforms=platforms, duties=duties,
                                           holds=holds)
        self.registry.register(self.collector)

    async def text(self) -> bytes:
        """The exposition, the database read now."""
        async with self.collector.scrape():
            return generate_latest(self.registry)

    def route(self, settings: MetricsSettings) -> Route:
        """``GET /metrics`` behind the token or the allow-list."""
        token = secret_value(settings.token).encode()
        networks = [ipaddress.ip_network(n) for n in settings.allow]

        def allowed(request: Request) -> bool:
            if token:
                given = request.headers.get("authorization", "")
                scheme, _, value = given.partition(" ")
                if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                                      token):
                    return True
            host = request.client.host if request.client is not None else ""
            with contextlib.suppress(ValueError):
                address = ipaddress.ip_address(host)
                return any(address in network for network in networks)
            return False

        async def metrics(request: Request) -> Response:
            if not allowed(request):
                return Response("forbidden\n", status_code=403,
                                headers={"WWW-Authenticate": "Bearer"} if token else None)
            return Response(await self.text(), media_type=CONTENT_TYPE_LATEST)

        return Route(METRICS_PATH, metrics, methods=["GET"])
