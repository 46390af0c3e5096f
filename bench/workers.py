"""Reports handled per second by 1, 2 and 3 ``gridbot run`` workers on PostgreSQL, and by
one on SQLite, in one run.

The path is production's: each worker is a separate process (``python -m
tests.worker_main … run``: ``gridbot run`` with Telegram's flood limits lifted, or they,
not the workers, would be measured) in webhook mode; a round-robin feeder POSTs group
reports (four groups bound to M01–M04, forty residents) to the workers' webhooks with a
few requests in flight per worker, as Telegram does. A report counts as handled when its
webhook request was answered 200, which gridbot does only after the transaction holding
the case, its events and its outgoing messages committed. "all sent" is when the fake Bot
API had received every message the reports caused (one process sends for the bot, see
gridbot/singleton_duties.py).

PostgreSQL is the server of tests/postgres.py (``GRIDBOT_TEST_POSTGRES_URL``, default
postgresql://postgres@127.0.0.1:5432/test); each round uses a schema of its own, dropped
afterwards.

Each worker's configuration (tests/workers.py) turns the report limits off (forty
residents send 25 reports each), quiet hours off and the sweep to every second, so that
every report becomes a case and both its messages leave at once.

The ratio of one PostgreSQL worker to one SQLite worker is taken in pairs of rounds run
back to back (``--pairs``, 5 by default), each pair in the other order from the one before:
the machine's speed drifts within minutes, and a later round of a run tends to be slower,
so one round of each, always in the same order, said as much about the order as about the
stores. Each pair's ratio is printed, and their median.

Each round also prints the CPU a report cost, from Linux's /proc: the workers, every
PostgreSQL process on the machine, and the bench's own process (the feeder and the fake
Bot API). Where the bench keeps two cores busy, reports a second follow the total; where
it does not (a fast SQLite worker), one worker's own thread is the limit, and the ratio
follows the two workers' own CPU a report. Both limits are printed. The columns say where
a store's extra cost lies (on PostgreSQL: the round trips, each waking another process,
on both sides).

    python bench/workers.py [--reports 1000] [--in-flight 8] [--pairs 5] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/telegram.py must not shadow the telegram package: this folder leaves the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from tests import postgres  # noqa: E402
from tests.proc import cpu_seconds  # noqa: E402
from tests.workers import Cluster  # noqa: E402


def server_cpu_seconds() -> float:
    """The CPU time of every PostgreSQL process on this machine (its server, when local;
    nothing is counted for a server elsewhere)."""
    total = 0.0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                total += cpu_seconds(int(comm.parent.name))
        except OSError:
            continue
    return total


@dataclass(frozen=True)
class Round:
    handled: float  # reports a second, answered
    sent: float  # reports a second, both messages at the fake Bot API
    #: CPU milliseconds a report, while handling: the workers, the PostgreSQL server's
    #: processes, and this process (the feeder and the fake Bot API)
    workers_cpu: float
    server_cpu: float
    bench_cpu: float


async def one_round(storage_url: str, workers: int, reports: int, in_flight: int,
                    folder: Path) -> Round:
    async with Cluster(folder=folder, storage_url=storage_url, count=workers) as cluster:
        assert cluster.bot is not None
        updates = [cluster.report(i) for i in range(reports)]
        await cluster.feed_all(updates[:20], in_flight=4)  # warm up: connections, caches
        pids = [w.proc.pid for w in cluster.workers if w.proc is not None]
        before = (sum(map(cpu_seconds, pids)), server_cpu_seconds(), time.process_time())
        start = time.perf_counter()
        await cluster.feed_all(updates[20:], in_flight=in_flight * workers)
        handled = time.perf_counter() - start
        after = (sum(map(cpu_seconds, pids)), server_cpu_seconds(), time.process_time())
        expected = 2 * reports  # the group's acknowledgement and the steward's notice
        deadline = time.monotonic() + 600
        while len(cluster.bot.sent) < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the benchmark stalled: {len(cluster.bot.sent)} of "
                                   f"{expected} messages sent")
            await asyncio.sleep(0.02)
        all_sent = time.perf_counter() - start
        n = reports - 20
        cpu = [1000 * (b - a) / n for a, b in zip(before, after, strict=True)]
        return Round(n / handled, n / all_sent, *cpu)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=8,
                        help="webhook requests in flight per worker (default 8)")
    parser.add_argument("--pairs", type=int, default=5,
                        help="pairs of one-worker rounds, PostgreSQL and SQLite back to back "
                             "in alternating order, for their ratio (default 5)")
    parser.add_argument("--smoke", action="store_true",
                        help="a quick run that only shows the bench works (40 reports, one "
                             "worker on PostgreSQL, one on SQLite)")
    args = parser.parse_args()
    if args.smoke:
        args.reports, args.pairs = 40, 1
    pair = [("PostgreSQL", 1), ("SQLite", 1)]
    rounds = [] if args.smoke else [("PostgreSQL", 2), ("PostgreSQL", 3)]
    for n in range(args.pairs):
        rounds += pair if n % 2 == 0 else pair[::-1]
    logging.basicConfig(level=logging.ERROR)
    reason = postgres.unavailable()
    if reason is not None:
        sys.exit(f"bench/workers.py needs PostgreSQL: {reason}")
    rows: list[tuple[str, int, Round]] = []
    for backend, workers in rounds:
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "SQLite":
                url, schema = f"sqlite:///{tmp}/bench.db", None
            else:
                schema = postgres.new_schema()
                url = postgres.url_for(schema)
            try:
                measured = await one_round(url, workers, args.reports, args.in_flight,
                                           Path(tmp))
            finally:
                if schema is not None:
                    postgres.drop_schema(schema)
        rows.append((backend, workers, measured))
        print(f"  {backend} × {workers}: {measured.handled:.0f} reports/s handled", flush=True)

    import asyncpg
    import telegram

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, python-telegram-bot {telegram.__version__}, "
          f"asyncpg {asyncpg.__version__}, PostgreSQL at {postgres.URL}")
    print(f"{args.reports} group reports per round (20 of them warm-up), "
          f"{args.in_flight} webhook requests in flight per worker")
    # Each one-worker round's partner is the other store's round next to it in its pair.
    singles = [row for row in rows if row[1] == 1]
    partner: dict[int, tuple[float, float]] = {}
    pair_of: dict[int, int] = {}
    ratios: list[tuple[float, float]] = []
    for k in range(0, len(singles) - 1, 2):
        first, second = singles[k], singles[k + 1]
        pg, lite = (first, second) if first[0] == "PostgreSQL" else (second, first)
        partner[id(pg)] = partner[id(lite)] = (lite[2].handled, lite[2].sent)
        pair_of[id(pg)] = pair_of[id(lite)] = k // 2 + 1
        ratios.append((pg[2].handled / lite[2].handled, pg[2].sent / lite[2].sent))
    middle = ((statistics.median(r[0] for r in ratios), statistics.median(r[1] for r in ratios))
              if ratios else None)
    # two and three workers: against the median SQLite round
    sqlite = [r for r in singles if r[0] == "SQLite"]
    typical = ((statistics.median(r[2].handled for r in sqlite),
                statistics.median(r[2].sent for r in sqlite)) if sqlite else None)
    print(f"{'pair':<6}{'store':<12}{'workers':>8}{'reports/s handled':>20}"
          f"{'reports/s all sent':>20}{'ratio handled':>15}{'ratio all sent':>16}"
          f"{'CPU ms: workers':>17}{'server':>8}{'bench':>7}{'total':>7}")
    for row in rows:
        backend, workers, cpu = row
        handled, sent = cpu.handled, cpu.sent
        peer = partner.get(id(row), typical)
        cells = f"{handled / peer[0]:>15.2f}{sent / peer[1]:>16.2f}" if peer else " " * 31
        total = cpu.workers_cpu + cpu.server_cpu + cpu.bench_cpu
        print(f"{pair_of.get(id(row), '-')!s:<6}{backend:<12}{workers:>8}{handled:>20.0f}"
              f"{sent:>20.0f}{cells}{cpu.workers_cpu:>17.2f}{cpu.server_cpu:>8.2f}"
              f"{cpu.bench_cpu:>7.2f}{total:>7.2f}")
    if middle is not None:
        print(f"one PostgreSQL worker / one SQLite worker, median of {len(ratios)} pairs: "
              f"{middle[0]:.2f} handled, {middle[1]:.2f} all sent")
        print("ratio: a one-worker round to the other store's round of its pair; two and three "
              "workers to the median SQLite worker. 'handled' is when each webhook was "
              "answered (after its commit); 'all sent' also waits for both messages of every "
              "report to reach the fake Bot API")
    lite_cpu = [r[2] for r in sqlite]
    pg_cpu = [r[2] for r in singles if r[0] == "PostgreSQL"]
    if lite_cpu and pg_cpu:
        # Reports a second follow the total CPU on a machine the bench keeps busy: were the
        # PostgreSQL worker and the bench as cheap as SQLite's, the server's own CPU would
        # still be extra, and cap the ratio here.
        lite = statistics.median(c.workers_cpu + c.bench_cpu for c in lite_cpu)
        server = statistics.median(c.server_cpu for c in pg_cpu)
        print(f"the PostgreSQL server's CPU alone allows at most {lite / (lite + server):.2f} "
              f"here (a SQLite report's {lite:.2f} CPU ms, workers and bench, against the "
              f"same plus the server's {server:.2f}; medians)")
        # Where the cores are not full, the one worker's own thread is the limit: then the
        # ratio follows what a report costs each worker.
        lite_worker = statistics.median(c.workers_cpu for c in lite_cpu)
        pg_worker = statistics.median(c.workers_cpu for c in pg_cpu)
        print(f"one worker's own CPU a report: SQLite {lite_worker:.2f} ms, PostgreSQL "
              f"{pg_worker:.2f} ms, a ratio of {lite_worker / pg_worker:.2f} (medians): the "
              f"limit where the worker's thread, not the two cores, is full")
    print("CPU ms: per report handled, from /proc, while the reports were fed: the worker "
          "processes, every PostgreSQL process on this machine (the server, if local; also "
          "counted in SQLite's rounds, where it idles), and this process (the feeder and the "
          "fake Bot API). On a machine the bench keeps busy, reports a second follow the total")


if __name__ == "__main__":
    asyncio.run(main())
