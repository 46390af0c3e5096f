"""``gridbot run`` stays idle while Telegram pauses it and while Telegram is down: the
real command, measured.

The bot polls the local fake Bot API. Four reports come in from one group while every
``sendMessage`` is answered 429 "retry after 11 s" (just longer than the sender waits in
hand), so eight messages wait. Once the pause has run out once, the process may use no
more than 2 % of one core (user + system time from /proc, over a few seconds); then the
fake stops (every connection refused) with the messages still queued, and the same holds.
Before, a drain that outlived its first pause handed the waiting messages back into the
past and claimed them again at once, for as long as the flood control lasted (a fifth to
a half of a core). bench/idle.py measures the same for a minute per phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from gridbot.config import load_config
from tests.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_idle", ROOT / "bench" / "idle.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

pytestmark = [
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)"),
    pytest.mark.filterwarnings("ignore:.*retry_after:telegram.warnings.PTBDeprecationWarning"),
]
#: the most of one core the bot may use, in percent, while it has nothing it may do
IDLE = 2.0
WINDOW = 6.0


@pytest.mark.slow(31)
async def test_gridbot_run_paused_and_then_cut_off_from_telegram_stays_idle(
        tmp_path: Path) -> None:
    fake = FakeTelegram()
    await fake.start()
    bot = fake.bot(bench.TOKEN, "BenchIdleBot")
    config = load_config(bench.write_config(tmp_path, fake))
    groups = await bench.seed(config, bot)
    db, log_path = tmp_path / "idle.db", tmp_path / "bot.log"
    log = log_path.open("w")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gridbot", "--config", str(tmp_path / "idle.toml"), "run",
        cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log)

    def tries() -> int:
        return sum(1 for m, _ in bot.calls if m == "sendMessage")

    def said(words: str) -> bool:
        return words in log_path.read_text(encoding="utf-8")

    try:
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.readline(), 30)
        await fake.until(lambda: any(m == "getUpdates" for m, _ in bot.calls), timeout=30)
        bot.fail("sendMessage", 429, retry_after=11, times=1_000_000)
        # four different matters (the same one again would be offered as a duplicate)
        matters = ("楼道灯坏了", "电梯门关不上", "门口垃圾满了", "消防通道被车堵了")
        for n in range(4):
            bot.say(bot.chats[groups[0]], {"id": 50_000 + n, "is_bot": False,
                                           "first_name": f"居民{n}"}, f"报事 R{n} {matters[n]}")

        def queued() -> int:
            with contextlib.closing(sqlite3.connect(db, timeout=10)) as raw:
                return raw.execute("SELECT COUNT(*) FROM outbox WHERE status IN"
                                   " ('queued', 'sending')").fetchone()[0]
        await fake.until(lambda: queued() == 8, timeout=30)
        first = await fake.until(tries, timeout=30)
        await fake.until(lambda: tries() > first, timeout=30)  # the first pause is over
        used = await bench.measure(proc.pid, WINDOW)
        assert used < IDLE, f"paused: {used:.2f} % of a core"
        assert said("telegram paused until")

        await fake.stop()  # and now Telegram cannot be reached at all
        await fake.until(lambda: said("telegram unreachable ("), timeout=30)
        used = await bench.measure(proc.pid, WINDOW)
        assert used < IDLE, f"down: {used:.2f} % of a core"
        assert said("polling Telegram failed") and queued() == 8
    finally:
        if proc.returncode is None:
            proc.terminate()
            started = time.monotonic()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            assert time.monotonic() - started < 10, "it stopped without waiting for Telegram"
        log.close()
        if not fake.closing:
            await fake.stop()
