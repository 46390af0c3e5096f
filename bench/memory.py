"""How much memory ``gridbot run`` holds with 1,000 bound groups and 100,000 stored cases.

The real command (``python -m gridbot --config FILE run``) on a SQLite file seeded with
1,000 micro-grids, each with a bound Telegram group, the configured staff linked in
private, and 100,000 cases (1 % open with their next step a day away, the rest closed),
polling the local fake Bot API (``tests/fake_telegram.py``, in this process). The bot's
resident set (``VmRSS``) and its peak (``VmHWM``) are read from ``/proc/PID/status``:

* **started**: after start-up (configuration, org sync of the 1,000 micro-grids, the first
  sweep and polls) and a few seconds to settle;
* **after reports**: then 200 reports arrive from 200 groups in a burst and are handled
  and answered (both messages of each reach the fake);
* **after a notice**: then a notice to all 1,000 groups is written and sent.

The bench sets what it needs explicitly: report limits and quiet hours off. Telegram's
own limits stay (30 messages a second), so the notice takes about 35 seconds to send.
Linux only (``/proc``).

    python bench/memory.py [--groups 1000] [--cases 100000] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/telegram.py must not shadow the telegram package: this folder leaves the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from gridbot.config import Config, load_config  # noqa: E402
from gridbot.domain import Account, Chat, ChatKind  # noqa: E402
from gridbot.store import store_for_url  # noqa: E402
from gridbot.store.sqlite import ts  # noqa: E402
from tests.fake_telegram import FakeBot, FakeTelegram  # noqa: E402

TOKEN = "7400:bench-memory"
TARGET_MB = 150
REPORTS = 200


def write_config(folder: Path, fake: FakeTelegram, groups: int) -> Path:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for old, new in [('url = "sqlite:///gridbot.db"', f'url = "sqlite:///{folder}/memory.db"'),
                     ("port = 8080", "port = 0"),
                     ("reports_per_person = 10", "reports_per_person = 0"),
                     ('quiet_hours = "22:00-07:00"', 'quiet_hours = ""')]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    for i in range(groups - 4):  # the example has four micro-grids
        text += (f'\n[[microgrids]]\ncode = "B{i:04d}"\nname = "小区{i:04d}"\n'
                 f'grid = "G0{1 + i % 3}"\n')
    text += (f'\n[telegram]\ntoken = "{TOKEN}"\nbase_url = "{fake.base_url}"\n'
             f'base_file_url = "{fake.base_file_url}"\nmode = "polling"\n')
    path = folder / "memory.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def seed(config: Config, bot: FakeBot, folder: Path, cases: int) -> list[int]:
    """Each micro-grid a bound group, each staff member a linked private chat; then the
    cases, straight through sqlite3 (setup, not measured)."""
    store = store_for_url(config.storage_url)
    await store.open()
    groups = []
    now = datetime.now(UTC)
    try:
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
    codes = [mg.code for mg in config.microgrids]
    stewards = {r.microgrid: r.primary for r in config.rosters.values()}
    past, future = ts(now - timedelta(days=30)), ts(now + timedelta(days=1))
    columns = ("microgrid, reporter_id, origin_platform, origin_chat_id, text, category,"
               " priority, status, level, assignee_id, claim_by, resolve_by, created_at,"
               " updated_at, window_start, wake_at, closed_at")

    def rows():  # type: ignore[no-untyped-def]
        for i in range(cases):
            mg = codes[i % len(codes)]
            open_ = i % 100 == 0
            yield (mg, "liu_nainai", "telegram", str(groups[i % len(groups)]),
                   f"3幢楼道灯坏了 {i}", "facility", "normal",
                   "claimed" if open_ else "closed", 0, stewards.get(mg, "zhang"), past,
                   future, past, past, past, future if open_ else None,
                   None if open_ else past)

    with sqlite3.connect(folder / "memory.db") as db:
        db.executemany(f"INSERT INTO cases ({columns}) VALUES ({', '.join('?' * 17)})",
                       rows())
    return groups


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) in MB, from /proc/PID/status."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


async def until(check, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark stalled")
        await asyncio.sleep(0.05)


def sent(bot: FakeBot) -> int:
    return sum(1 for m, _ in bot.calls if m == "sendMessage")


async def run(groups: int, cases: int, settle: float) -> list[tuple[str, float, float]]:
    fake = FakeTelegram()
    await fake.start()
    bot = fake.bot(TOKEN, "BenchMemoryBot")
    rows = []
    with tempfile.TemporaryDirectory(prefix="gridbot-memory-") as tmp:
        folder = Path(tmp)
        config = load_config(write_config(folder, fake, groups))
        chats = await seed(config, bot, folder, cases)
        log = (folder / "bot.log").open("w")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gridbot", "--config", str(folder / "memory.toml"), "run",
            cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=log)
        try:
            assert proc.stdout is not None
            await asyncio.wait_for(proc.stdout.readline(), 120)  # "gridbot started …"
            await until(lambda: any(m == "getUpdates" for m, _ in bot.calls), 60)
            await asyncio.sleep(settle)
            rows.append(("started", *memory_mb(proc.pid)))

            reports = min(REPORTS, len(chats))
            before = sent(bot)
            for n in range(reports):
                bot.say(bot.chats[chats[n]],
                        {"id": 50_000 + n, "is_bot": False, "first_name": f"居民{n}"},
                        f"报事 R{n} 楼道灯坏了")
            # each report: the group's acknowledgement (its steward may be unlinked: the
            # four example stewards are, the others' cases go up to a linked leader)
            await until(lambda: sent(bot) >= before + reports, 300)
            await asyncio.sleep(settle)
            rows.append((f"after {reports} reports", *memory_mb(proc.pid)))

            admin = next(p for p in config.people if p.role.value == "subdistrict_admin")
            admin_user = 10_000 + config.people.index(admin) + 1
            before = sent(bot)
            bot.say(bot.chats[admin_user],
                    {"id": admin_user, "is_bot": False, "first_name": admin.name},
                    "/notice all 明天上午9点停水检修")
            await until(lambda: sent(bot) >= before + len(chats), 600)
            await asyncio.sleep(settle)
            rows.append((f"after a notice to {len(chats):,} groups", *memory_mb(proc.pid)))
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            log.close()
            said = (folder / "bot.log").read_text(encoding="utf-8")
    if not fake.closing:
        await fake.stop()
    if "Traceback" in said:
        print(said[-3000:], file=sys.stderr)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--smoke", action="store_true",
                        help="a quick run that only shows the bench works (20 groups, "
                             "1,000 cases)")
    args = parser.parse_args()
    if not Path("/proc/self/status").exists():
        sys.exit("bench/memory.py reads /proc: Linux only")
    settle = 5.0
    if args.smoke:
        args.groups, args.cases, settle = 20, 1000, 0.5
    rows = asyncio.run(run(max(4, args.groups), args.cases, settle))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}; "
          f"{args.groups:,} bound groups, {args.cases:,} stored cases")
    print(f"| {'phase':<34} | {'resident MB':>11} | {'peak MB':>8} |")
    for phase, rss, peak in rows:
        print(f"| {phase:<34} | {rss:>11.1f} | {peak:>8.1f} |")
    worst = max(peak for _, _, peak in rows)
    print(f"peak / target ({TARGET_MB} MB): {worst / TARGET_MB:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
