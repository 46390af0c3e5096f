"""CPU per Bot API call: python-telegram-bot on its own httpx, and on gridbot's aiohttp.

The same ``Bot.send_message`` (HTML, a claim button, no link preview, as the outbox sends)
to the local fake Bot API in a process of its own, ``--sends`` messages over twenty
groups with ``--under-way`` calls in flight, once through PTB's ``HTTPXRequest`` and once
through ``gridbot/adapters/telegram/transport.py``'s ``AiohttpRequest``, in turn, each
first in every other round. CPU is this process's (the fake's apart), per call; each
message is checked to have arrived. This is the figure behind the choice of transport
(pyproject.toml); bench/telegram.py measures the whole bot.

    python bench/transport.py [--sends 1500] [--under-way 8] [--rounds 3] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/telegram.py must not shadow the telegram package: this folder leaves the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import telegram  # noqa: E402
from telegram import (  # noqa: E402
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
)
from telegram.constants import ParseMode  # noqa: E402
from telegram.request import BaseRequest, HTTPXRequest  # noqa: E402

from gridbot.adapters.telegram.transport import AiohttpRequest  # noqa: E402
from tests.fake_telegram import FakeTelegramProcess  # noqa: E402

GROUPS = 20
_tokens = itertools.count(9001)


KINDS = ("httpx (PTB's own)", "aiohttp (gridbot's)")


def make(kind: str) -> tuple[BaseRequest, BaseRequest]:
    """The bot's two requests (calls, getUpdates) as each transport sizes them."""
    if kind.startswith("httpx"):
        return HTTPXRequest(connection_pool_size=256), HTTPXRequest()
    return AiohttpRequest(), AiohttpRequest(pool_size=1)


async def one(fake: FakeTelegramProcess, kind: str, sends: int, under_way: int
              ) -> tuple[float, float]:
    """CPU ms a call and calls a second, after a warm-up of 100."""
    token = f"{next(_tokens)}:bench-transport"
    account = await fake.bot(token, "BenchTransportBot")
    chats = await account.groups([(-300_000_000 - n, f"群 {n}") for n in range(GROUPS)])
    calls, updates = make(kind)
    bot = Bot(token, base_url=fake.base_url, request=calls, get_updates_request=updates)
    await bot.initialize()
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("认领 claim",
                                                           callback_data="claim 12")]])
    slots = asyncio.Semaphore(under_way)

    async def send(i: int) -> None:
        async with slots:
            await bot.send_message(
                chat_id=chats[i % GROUPS].id, parse_mode=ParseMode.HTML,
                text=f"<b>新工单 #{i}</b>\n3幢楼道灯坏了（{i}）&amp; 请认领",
                reply_markup=keyboard, link_preview_options=LinkPreviewOptions(is_disabled=True))

    try:
        await asyncio.gather(*(send(i) for i in range(100)))
        cpu, start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(send(i) for i in range(100, 100 + sends)))
        cpu, seconds = time.process_time() - cpu, time.perf_counter() - start
    finally:
        await bot.shutdown()
    sent = await account.sent()
    assert len(sent) == 100 + sends and {s.plain for s in sent} == {
        f"新工单 #{i}\n3幢楼道灯坏了（{i}）& 请认领" for i in range(100 + sends)}, "messages lost"
    return 1000 * cpu / sends, sends / seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=1500)
    parser.add_argument("--under-way", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true",
                        help="a quick run that only shows the bench works (100 sends, 1 round)")
    args = parser.parse_args()
    if args.smoke:
        args.sends, args.rounds = 100, 1
    kinds = list(KINDS)
    fake = FakeTelegramProcess()
    await fake.start()
    rows = []
    try:
        for n in range(1, args.rounds + 1):
            order = kinds if n % 2 else kinds[::-1]
            measured = {kind: await one(fake, kind, args.sends, args.under_way)
                        for kind in order}
            rows.append((n, measured))
    finally:
        await fake.stop()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, "
          f"python-telegram-bot {telegram.__version__}")
    print(f"{args.sends} sendMessage calls per transport per round, {args.under_way} under way, "
          "fake Bot API in its own process")
    header = "".join(f"{kind + ' CPU ms/call':>34}{'calls/s':>9}" for kind in kinds)
    print(f"{'round':>5}{header}{'CPU ratio aiohttp / httpx':>28}")
    for n, measured in rows:
        cells = "".join(f"{measured[k][0]:>34.3f}{measured[k][1]:>9.0f}" for k in kinds)
        ratio = measured[kinds[1]][0] / measured[kinds[0]][0]
        print(f"{n:>5}{cells}{ratio:>28.2f}")


if __name__ == "__main__":
    asyncio.run(main())
