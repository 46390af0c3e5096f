"""What the deadline sweep costs as the case table grows: 10 k, 100 k and 1 M cases.

Each size holds 1 % due cases (unclaimed, their claim window just missed), 20 % open
cases whose next step is in the future and the rest closed. Measured per size:

* an idle sweep (nothing due): what the timer pays every few seconds, found through
  the ``cases_wake`` index; next to it, the same query made to ignore the index
  (``NOT INDEXED``), the peer that shows what the index saves;
* the real sweep of the due 1 %: ``DeadlineSweep.run_due`` (each step selects the
  earliest due case, escalates it to the grid leader, writes events and outbox rows) —
  its cost per step must not grow with the table. Run twice on copies of the same
  database: one step per transaction (as the sweep was before issue 22) and
  ``STEPS_PER_TRANSACTION`` steps per transaction, each in a savepoint (as it is now),
  each ``--reps`` times in turn on a fresh copy; the median time, and the transactions
  and statements (transaction control included) SQLite's trace saw.

The cases are written straight into the table, so no limit on reports applies; every
person has a private chat on the console, so each step's messages are queued.

    python bench/sweep.py [--sizes 10000 100000 1000000] [--reps 3] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from gridbot.clock import VirtualClock
from gridbot.config import Config, load_config
from gridbot.demo import DEFAULT_START, parse_start
from gridbot.engine import Engine
from gridbot.escalation import STEPS_PER_TRANSACTION, DeadlineSweep
from gridbot.render import Renderer
from gridbot.store import SQLiteStore
from gridbot.store.sqlite import ts

ROOT = Path(__file__).resolve().parent.parent
MICROGRIDS = [("M01", "zhang"), ("M02", "li"), ("M03", "zhao"), ("M04", "qian")]


def seed(path: Path, size: int, now_ts: str, future_ts: str, past: dict[str, str]) -> int:
    """Fill the case table with ``size`` rows straight through sqlite3 (setup, not timed)."""
    due = size // 100
    db = sqlite3.connect(path)
    columns = ("microgrid, reporter_id, origin_platform, origin_chat_id, text, category,"
               " priority, status, level, assignee_id, claim_by, resolve_by, created_at,"
               " updated_at, window_start, reminded_at, wake_at, closed_at")

    def rows():
        for i in range(size):
            mg, steward = MICROGRIDS[i % 4]
            if i % 100 == 0:  # due: claim window missed a minute ago
                yield (mg, "liu_nainai", "console", f"group:{mg}", "3幢楼道灯坏了", "facility",
                       "normal", "assigned", 0, steward, past["claim_by"], future_ts,
                       past["start"], past["start"], past["start"], past["reminded"],
                       past["claim_by"], None)
            elif i % 100 <= 20:  # open, next step in the future
                yield (mg, "liu_nainai", "console", f"group:{mg}", "垃圾桶满了", "sanitation",
                       "normal", "claimed", 0, steward, past["claim_by"], future_ts,
                       past["start"], now_ts, past["start"], None, future_ts, None)
            else:  # closed long ago: no wake
                yield (mg, "liu_nainai", "console", f"group:{mg}", "楼上噪音", "neighbours",
                       "normal", "closed", 0, steward, past["claim_by"], future_ts,
                       past["start"], past["start"], past["start"], None, None, now_ts)

    with db:
        db.executemany(f"INSERT INTO cases ({columns}) VALUES ({', '.join('?' * 18)})", rows())
        # Everyone has a private chat on the console, so each step queues its messages.
        db.execute("INSERT INTO accounts (platform, user_id, display_name, person_id,"
                   " private_chat_id) SELECT 'console', id, name, id, 'dm:' || id FROM people")
    db.execute("ANALYZE")
    db.close()
    return due


async def measure(folder: Path, size: int, reps: int) -> dict[str, float]:
    config = load_config(ROOT / "config.example.toml")
    start = parse_start(DEFAULT_START, config) + timedelta(hours=2)  # 11:00, Monday
    clock = VirtualClock(start)
    path = folder / f"sweep-{size}.db"
    store = SQLiteStore(str(path))
    await store.open()
    engine = Engine(config, store, clock)
    await engine.start()
    await store.close()
    now = clock.now()
    due = seed(path, size, ts(now), ts(now + timedelta(days=2)), {
        "claim_by": ts(now - timedelta(minutes=1)),
        "start": ts(now - timedelta(hours=2, minutes=1)),
        "reminded": ts(now - timedelta(minutes=31)),
    })

    await store.open()
    raw = sqlite3.connect(path)
    try:
        # Idle sweeps: a minute before anything is due.
        clock_before = VirtualClock(now - timedelta(minutes=2))
        idle_engine = Engine(config, store, clock_before)
        idle_sweep = DeadlineSweep(idle_engine)
        idle = []
        for _ in range(50):
            t0 = time.perf_counter()
            assert await idle_sweep.run_due(clock_before.now()) == 0
            idle.append(time.perf_counter() - t0)
        unindexed = []
        for _ in range(5):
            t0 = time.perf_counter()
            raw.execute("SELECT number FROM cases NOT INDEXED WHERE wake_at IS NOT NULL"
                        " AND wake_at <= ? ORDER BY wake_at LIMIT 1",
                        (ts(clock_before.now()),)).fetchall()
            unindexed.append(time.perf_counter() - t0)
    finally:
        raw.close()
        await store.close()
    # The real sweep of the due 1 %, each time on a fresh copy of the same database: one
    # step per transaction and several, in turn (the machine's other load hits both).
    renderer = Renderer(config.timezone, config.locale)  # templates compiled once for all
    runs: dict[int, list[Run]] = {1: [], STEPS_PER_TRANSACTION: []}
    for rep in range(reps):
        for batch, done in runs.items():
            copy = folder / f"sweep-{size}-{batch}-{rep}.db"
            shutil.copy(path, copy)
            done.append(await sweep_all(config, copy, clock, renderer, batch=batch, due=due))
            copy.unlink()
    result: dict[str, float] = {"size": size, "due": due,
                                "idle_us": statistics.median(idle) * 1e6,
                                "scan_us": statistics.median(unindexed) * 1e6}
    for name, batch in (("single", 1), ("batched", STEPS_PER_TRANSACTION)):
        took = statistics.median(r.seconds for r in runs[batch])
        result |= {f"{name}_s": took, f"{name}_ms": took / due * 1000,
                   f"{name}_per_s": due / took,
                   f"{name}_statements": runs[batch][0].statements / due,
                   f"{name}_transactions": runs[batch][0].transactions}
    return result


@dataclass(frozen=True)
class Run:
    seconds: float
    #: what SQLite's trace saw: statements (transaction control included) and BEGINs
    statements: int
    transactions: int


async def sweep_all(config: Config, path: Path, clock: VirtualClock, renderer: Renderer, *,
                    batch: int, due: int) -> Run:
    """The sweep stepping every due case, ``batch`` steps per transaction."""
    store = SQLiteStore(str(path))
    await store.open()
    traced: list[str] = []
    try:
        engine = Engine(config, store, clock, renderer)
        await engine.start()
        await store._require().set_trace_callback(traced.append)
        t0 = time.perf_counter()
        steps = await DeadlineSweep(engine, batch=batch).run_due(clock.now())
        took = time.perf_counter() - t0
    finally:
        await store.close()
    assert steps == due, (steps, due)
    return Run(seconds=took, statements=len(traced),
               transactions=sum(s.startswith("BEGIN") for s in traced))


async def main(sizes: list[int], reps: int) -> None:
    print(f"deadline sweep · {platform.machine()} · Python {platform.python_version()}"
          f" · SQLite {sqlite3.sqlite_version}")
    header = ("stored cases", "due", "idle sweep µs", "unindexed scan µs", "scan / idle",
              "1 step/tx: transactions", "statements per step", "sweep s", "ms per step",
              "steps/s", f"{STEPS_PER_TRANSACTION} steps/tx: transactions",
              "statements per step", "sweep s", "ms per step", "steps/s", "speed-up")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            r = await measure(Path(folder), size, reps)
            results.append(r)
            cells = [f"{r['size']:,}", f"{r['due']:,}", f"{r['idle_us']:.0f}",
                     f"{r['scan_us']:,.0f}", f"{r['scan_us'] / r['idle_us']:,.0f}"]
            for name in ("single", "batched"):
                cells += [f"{r[name + '_transactions']:,.0f}", f"{r[name + '_statements']:.1f}",
                          f"{r[name + '_s']:.2f}", f"{r[name + '_ms']:.2f}",
                          f"{r[name + '_per_s']:.0f}"]
            cells.append(f"{r['single_s'] / r['batched_s']:.1f}×")
            print(" | ".join(cells), flush=True)
    first, last = results[0], results[-1]
    print(f"\nper-step cost, largest / smallest table: "
          f"{last['batched_ms'] / first['batched_ms']:.2f} ({STEPS_PER_TRANSACTION} steps/tx), "
          f"{last['single_ms'] / first['single_ms']:.2f} (1 step/tx); idle sweep: "
          f"{last['idle_us'] / first['idle_us']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--smoke", action="store_true",
                        help="a quick run that only shows the bench works (1,000 and 2,000)")
    parser.add_argument("--reps", type=int, default=3,
                        help="sweeps of each kind per size, on fresh copies (the median)")
    args = parser.parse_args()
    asyncio.run(main([1_000, 2_000] if args.smoke else args.sizes, 1 if args.smoke else args.reps))
