"""How much of a core ``gridbot run`` uses with nothing to do, while Telegram pauses it,
and while Telegram cannot be reached.

The real command (``python -m gridbot --config FILE run``, Telegram's real limits, the
configuration's own timers) polls the local fake Bot API (``tests/fake_telegram.py``, in
this process). The bot's CPU time is read from ``/proc/PID/stat`` (user + system) over
each phase, one after the other:

* **idle**: nothing to do but poll;
* **paused**: four reports came in from one group and every ``sendMessage`` is answered
  429 "retry after 15" (flood control), so their eight messages (four to the group, four
  to its steward) wait;
* **down**: then the fake Bot API stops (every connection refused) with them still
  queued.

The bench sets what it needs explicitly: quiet hours off (so the steward's notices are
due at once whatever the hour), per-person report limits off; the sweep runs every 15 s
as configured by default. Linux only (``/proc``).

    python bench/idle.py [--seconds 60] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/telegram.py must not shadow the telegram package: this folder leaves the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from gridbot.config import Config, load_config  # noqa: E402
from gridbot.domain import Account, Chat, ChatKind  # noqa: E402
from gridbot.store import store_for_url  # noqa: E402
from tests.fake_telegram import FakeBot, FakeTelegram  # noqa: E402
from tests.proc import cpu_seconds  # noqa: E402

TOKEN = "7400:bench-idle"


def write_config(folder: Path, fake: FakeTelegram) -> Path:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for old, new in [('url = "sqlite:///gridbot.db"', f'url = "sqlite:///{folder}/idle.db"'),
                     ("port = 8080", "port = 0"),
                     ("reports_per_person = 10", "reports_per_person = 0"),
                     # alike reports are cases here, not duplicates offered to follow
                     ("duplicate_hours = 72", "duplicate_hours = 0"),
                     ('quiet_hours = "22:00-07:00"', 'quiet_hours = ""')]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    text += (f'\n[telegram]\ntoken = "{TOKEN}"\nbase_url = "{fake.base_url}"\n'
             f'base_file_url = "{fake.base_file_url}"\nmode = "polling"\n')
    path = folder / "idle.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def seed(config: Config, bot: FakeBot) -> list[int]:
    """Each micro-grid a bound group, each staff member a linked private chat."""
    store = store_for_url(config.storage_url)
    await store.open()
    groups = []
    try:
        now = datetime.now(UTC)
        async with store.transaction() as tx:
            await tx.sync_org(config)
            for n, mg in enumerate(config.microgrids, start=1):
                chat = bot.group(-100_000_000 - n, mg.name)
                groups.append(chat.id)
                await tx.save_chat(Chat(platform="telegram", chat_id=str(chat.id),
                                        kind=ChatKind.GROUP, title=mg.name,
                                        microgrid=mg.code), bound_by="bench", now=now)
            for n, person in enumerate(config.people, start=1):
                if person.role.value == "resident":
                    continue
                user = {"id": 10_000 + n, "is_bot": False, "first_name": person.name}
                bot.private(user)
                await tx.save_account(Account(
                    platform="telegram", user_id=str(user["id"]), display_name=person.name,
                    person_id=person.id, private_chat_id=str(user["id"])), now)
    finally:
        await store.close()
    return groups


def wal_bytes(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


async def until(check, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark stalled")
        await asyncio.sleep(0.05)


async def measure(pid: int, seconds: float) -> float:
    """Percent of one core the process used over the next ``seconds``."""
    before, start = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - start)


async def run(seconds: float, settle: float) -> tuple[list[tuple[str, float, int, str]], str]:
    fake = FakeTelegram()
    await fake.start()
    bot = fake.bot(TOKEN, "BenchIdleBot")
    rows = []
    with tempfile.TemporaryDirectory(prefix="gridbot-idle-") as tmp:
        folder = Path(tmp)
        config = load_config(write_config(folder, fake))
        groups = await seed(config, bot)
        db = folder / "idle.db"
        log = (folder / "bot.log").open("w")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gridbot", "--config", str(folder / "idle.toml"), "run",
            cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=log)
        try:
            assert proc.stdout is not None
            await asyncio.wait_for(proc.stdout.readline(), 30)  # "gridbot started …"
            await until(lambda: any(m == "getUpdates" for m, _ in bot.calls), 30)
            await asyncio.sleep(settle)
            rows.append(("idle", await measure(proc.pid, seconds), wal_bytes(db), ""))

            bot.fail("sendMessage", 429, retry_after=15, times=1_000_000)
            for n in range(4):  # into one group: its steward gets four notices too
                bot.say(bot.chats[groups[0]],
                        {"id": 50_000 + n, "is_bot": False, "first_name": f"居民{n}"},
                        f"报事 R{n} 楼道灯坏了")

            def handled() -> bool:
                with contextlib.closing(sqlite3.connect(db, timeout=10)) as raw:
                    return raw.execute("SELECT COUNT(*) FROM cases").fetchone()[0] >= 4
            await until(handled, 30)
            await until(lambda: any(m == "sendMessage" for m, _ in bot.calls), 30)
            await asyncio.sleep(settle)
            tries = sum(1 for m, _ in bot.calls if m == "sendMessage")
            rows.append(("paused (429, retry after 15 s)", await measure(proc.pid, seconds),
                         wal_bytes(db),
                         f"{sum(1 for m, _ in bot.calls if m == 'sendMessage') - tries} "
                         f"sendMessage tries"))

            await fake.stop()  # Telegram unreachable: connections refused
            await asyncio.sleep(settle)
            rows.append(("down (connection refused)", await measure(proc.pid, seconds),
                         wal_bytes(db), ""))
        finally:
            stopping = time.monotonic()
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            log.close()
            print(f"(stopped in {time.monotonic() - stopping:.1f} s)", file=sys.stderr)
            said = (folder / "bot.log").read_text(encoding="utf-8").splitlines()
    if not fake.closing:
        await fake.stop()
    paused = sum("telegram paused until" in line for line in said)
    down = sum("telegram unreachable (" in line for line in said)
    return rows, f"the bot's log said 'paused until' {paused}x and 'unreachable' {down}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="how long each phase is measured (default 60)")
    parser.add_argument("--smoke", action="store_true",
                        help="a quick run that only shows the bench works (1 s phases)")
    args = parser.parse_args()
    if not Path("/proc/self/stat").exists():
        sys.exit("bench/idle.py reads /proc: Linux only")
    seconds, settle = (1.0, 0.3) if args.smoke else (args.seconds, 5.0)
    rows, said = asyncio.run(run(seconds, settle))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}; "
          f"each phase measured for {seconds:g} s after {settle:g} s")
    print(f"{'phase':<34}{'% of one core':>14}{'WAL bytes':>12}  note")
    for phase, value, wal, note in rows:
        print(f"{phase:<34}{value:>14.2f}{wal:>12,}  {note}")
    print(said)
    return 0


if __name__ == "__main__":
    sys.exit(main())
