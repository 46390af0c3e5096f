"""``gridbot run`` with its platform down stays idle: the real command, measured.

The bot polls the local fake Bot API; a few reports come in, their messages meet 500s,
and then the fake stops (every connection refused) while they are still queued. From
then on the process may use no more than 2 % of one core (user + system time from
/proc, over a few seconds once the outage is known). Before, the sender claimed and
handed back the waiting messages over and over (half a core, for as long as it
lasted). bench/idle.py measures the same for a minute per phase, idle and paused too.
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


async def test_gridbot_run_with_telegram_down_stays_idle(tmp_path: Path) -> None:
    fake = FakeTelegram()
    await fake.start()
    bot = fake.bot(bench.TOKEN, "BenchIdleBot")
    config = load_config(bench.write_config(tmp_path, fake))
    groups = await bench.seed(config, bot)
    db = tmp_path / "idle.db"
    log = (tmp_path / "bot.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gridbot", "--config", str(tmp_path / "idle.toml"), "run",
        cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log)
    try:
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.readline(), 30)
        await fake.until(lambda: any(m == "getUpdates" for m, _ in bot.calls), timeout=30)
        bot.fail("sendMessage", 500, times=1000)  # the messages wait for a retry …
        for n in range(2):
            bot.say(bot.chats[groups[n]], {"id": 50_000 + n, "is_bot": False,
                                           "first_name": f"居民{n}"}, f"报事 R{n} 楼道灯坏了")

        def waiting() -> bool:
            with contextlib.closing(sqlite3.connect(db, timeout=10)) as raw:
                return raw.execute("SELECT COUNT(*) FROM outbox WHERE status = 'queued'"
                                   " AND error != ''").fetchone()[0] >= 4
        await fake.until(waiting, timeout=30)
        await fake.stop()  # … and then Telegram cannot be reached at all

        def said(words: str) -> bool:
            return words in (tmp_path / "bot.log").read_text(encoding="utf-8")
        await fake.until(lambda: said("telegram unreachable ("), timeout=30)
        await asyncio.sleep(1.0)
        used = await bench.measure(proc.pid, 6.0)
        assert used < 2.0, f"{used:.2f} % of a core"
        assert said("polling Telegram failed")
    finally:
        if proc.returncode is None:
            proc.terminate()
            started = time.monotonic()
            await asyncio.wait_for(proc.wait(), 30)
            assert time.monotonic() - started < 10, "it stopped without waiting for Telegram"
        log.close()
        if not fake.closing:
            await fake.stop()
