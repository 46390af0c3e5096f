"""How many reports a second the case loop handles on SQLite, next to its floor.

The real path: ``Engine.handle`` (dedupe, identify, parse, classify, route, case,
events, outbox rows in one transaction) and then ``OutboxSender.drain`` through the
console adapter (writing nowhere). The peer, measured in the same run on the same
disk, is the least any durable intake must do: one committed aiosqlite INSERT per
message. The ratio says what the rest of the loop costs on top of that floor.

It runs twice: reports one by one (a commit each), and reports arriving together
(``--batch``, 100 by default: what one ``getUpdates`` brings, or a burst of webhook
requests) handled by ``Engine.handle_many`` in one transaction with a savepoint each
(group commit), each burst then sent by one drain. Before the clock starts, a few
reports compile the templates they use: the steady state is measured.

The three paths take turns, ``--rounds`` times (3 by default), and each figure printed
is the median of its rounds. The machine's speed drifts within minutes, by half on a
shared virtual machine, so a path timed alone at one moment says as much about the
moment as about the path.

The configured residents send every report, far more than ``[limits]
reports_per_person`` allows in an hour: the bench turns the report limits off, so that
every report is logged and what it measures is the whole loop, not a refusal.

    python bench/intake.py [--reports 2000] [--batch 100] [--rounds 3] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import platform
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import aiosqlite

from gridbot.config import load_config
from gridbot.demo import DEFAULT_START, Demo, parse_start
from gridbot.domain import ChatKind, Incoming, Person
from gridbot.store import CaseQuery

ROOT = Path(__file__).resolve().parent.parent
#: reports handled before the clock starts (each template is compiled at its first use)
WARM_UP = 24
TEXTS = ["3幢楼道灯坏了", "消防通道被车挡住了", "垃圾桶满了没人清", "楼上噪音太大",
         "请问居住证怎么办理", "帮忙给独居老人买药"]


def bursts(people: list[Person], prefix: str, count: int, batch: int) -> list[list[Incoming]]:
    """``count`` group reports from the configured residents, ``batch`` at a time."""
    messages = []
    for i in range(count):
        person = people[i % len(people)]
        messages.append(Incoming(
            platform="console", chat_id=f"group:{person.unit}", chat_kind=ChatKind.GROUP,
            sender_id=person.id, sender_name=person.name,
            text=f"报事 {TEXTS[i % len(TEXTS)]} ({prefix}{i})", message_id=f"{prefix}{i}"))
    return [messages[i:i + batch] for i in range(0, count, batch)]


async def gridbot_run(folder: Path, reports: int, batch: int) -> tuple[float, float]:
    config = load_config(ROOT / "config.example.toml")
    config = dataclasses.replace(config, limits=dataclasses.replace(
        config.limits, reports_per_person=0, reports_per_chat=0),
        # alike reports are cases here, not duplicates offered to follow
        policy=dataclasses.replace(config.policy, duplicate_window=timedelta(0)))
    people = [p for p in config.people if p.role.value == "resident"]
    async with Demo(config, folder / f"bench-{batch}.db", parse_start(DEFAULT_START, config),
                    out=io.StringIO()) as demo:
        demo.console.out = None

        async def run(burst: list[Incoming]) -> None:
            if batch == 1:
                await demo.engine.handle(burst[0])
            else:  # what arrived together (one getUpdates batch): one commit
                await demo.engine.handle_many(burst)
            await demo.sender.drain()
            demo.console.delivered.clear()  # the console keeps a transcript for tests

        # Steady state is measured: the first reports compile the templates they use.
        for burst in bursts(people, "w", WARM_UP, batch):
            await run(burst)
        start, cpu = time.perf_counter(), time.process_time()
        for burst in bursts(people, "b", reports, batch):
            await run(burst)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        async with demo.store.transaction() as tx:
            logged = len(await tx.cases(CaseQuery(limit=reports + WARM_UP + 1)))
        assert logged == reports + WARM_UP, f"only {logged} of {reports} reports became cases"
        return elapsed, cpu


async def floor_run(folder: Path, reports: int) -> tuple[float, float]:
    async with aiosqlite.connect(folder / "floor.db", isolation_level=None) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("CREATE TABLE inbox (id TEXT PRIMARY KEY, text TEXT)")
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(reports):
            await db.execute("BEGIN IMMEDIATE")
            await db.execute("INSERT INTO inbox VALUES (?, ?)", (f"b{i}", TEXTS[i % 6]))
            await db.execute("COMMIT")
        return time.perf_counter() - start, time.process_time() - cpu


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100,
                        help="reports that arrive together and are committed together "
                             "(Telegram's getUpdates brings up to 100)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times the three paths take turns; medians are printed")
    parser.add_argument("--smoke", action="store_true",
                        help="a quick run that only shows the bench works (50 reports, "
                             "one round)")
    args = parser.parse_args()
    if args.smoke:
        args.reports, args.rounds = 50, 1
    timed: dict[str, list[tuple[float, float]]] = {"alone": [], "together": [], "floor": []}
    for n in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            timed["alone"].append(await gridbot_run(folder, args.reports, 1))
            timed["together"].append(await gridbot_run(folder, args.reports, args.batch))
            timed["floor"].append(await floor_run(folder, args.reports))
        print(f"  round {n + 1}: " + ", ".join(
            f"{path} {args.reports / found[-1][0]:.0f}/s" for path, found in timed.items()),
            flush=True)
    (alone, alone_cpu), (together, together_cpu), (floor, floor_cpu) = (
        (statistics.median(t for t, _ in found), statistics.median(c for _, c in found))
        for found in timed.values())
    floor_rate = args.reports / floor
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, "
          f"SQLite {aiosqlite.sqlite_version}")
    # CPU time (the process's, both threads) says what a report costs even when the
    # machine is shared: the wall-clock rate falls with the share of a core the bench gets.
    print(f"{'path':<52}{'reports':>8}{'seconds':>9}{'per second':>12}{'CPU ms each':>13}"
          f"{'ratio':>7}")
    rows = [("gridbot: engine + outbox, one commit per report", alone, alone_cpu),
            (f"gridbot: engine + outbox, {args.batch} reports per commit", together,
             together_cpu),
            ("floor: one committed INSERT per message", floor, floor_cpu)]
    for name, seconds, cpu in rows:
        rate = args.reports / seconds
        print(f"{name:<52}{args.reports:>8}{seconds:>9.2f}{rate:>12.0f}"
              f"{1000 * cpu / args.reports:>13.2f}{rate / floor_rate:>7.3f}")
    print(f"ratio gridbot / floor: {floor / alone:.3f} one by one, {floor / together:.3f} "
          f"with group commit (per second); CPU: {floor_cpu / alone_cpu:.3f}, "
          f"{floor_cpu / together_cpu:.3f}")
    print(f"each figure: the median of {args.rounds} round(s), the paths taking turns")


if __name__ == "__main__":
    asyncio.run(main())
