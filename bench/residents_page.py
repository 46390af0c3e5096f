"""The residents' report page on a slow phone connection: what it weighs and how soon it
shows, against the issue's limits (under 100 KB, first render under 2 s on slow 3G).

The real command (``python -m gridbot --config FILE run``, the example configuration with
the fake Bot API of ``tests/fake_telegram.py`` in this process) serves the page. Before
measuring, M01 gets a household ledger (12 buildings of 3 entrances, 216 households: the
building and entrance lists) and ``--cases`` open cases reported through the page itself
(the list under the form shows at most 20), so the page is as heavy as it gets.

Each run is a new browser context (a phone that never opened the page: cold cache, no
cookie) in Debian's Chromium (``GRIDBOT_CHROMIUM``, else /usr/bin/chromium) as a phone in
WeChat (390×844, WeChat's user agent), with the network throttled through the DevTools
protocol (``Network.emulateNetworkConditions``): ``--kbps`` down and up (400 kbit/s) and
``--latency`` added to every request (400 ms), the issue's "slow 3G". DevTools' own
"Slow 3G" preset uses the same rate and a 2,000 ms latency: ``--latency 2000``.
Measured per run: the bytes received for the page's HTML, stylesheet and script (headers
included, as the protocol counts them), the first contentful paint and the load event
(from the navigation's start, by the page's Performance API).

    python bench/residents_page.py [--runs 5] [--cases 20] [--latency 400] [--kbps 400]
                                   [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# bench/telegram.py must not shadow the telegram package: this folder leaves the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from gridbot.config import Config, load_config  # noqa: E402
from gridbot.keys import link_key  # noqa: E402
from gridbot.residents import links  # noqa: E402
from gridbot.store import store_for_url  # noqa: E402
from gridbot.store.base import Household  # noqa: E402
from tests.browser import PHONE, chromium  # noqa: E402
from tests.fake_telegram import FakeTelegram  # noqa: E402

TOKEN = "7500:bench-residents"
LIMIT_KB = 100.0
LIMIT_S = 2.0
WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) "
             "NetType/WIFI Language/zh_CN")
#: what the page is made of, as the DevTools protocol names resource types
PAGE_TYPES = {"Document": "HTML", "Stylesheet": "CSS", "Script": "JS"}
TEXTS = ["楼道灯坏了，晚上看不见", "电梯按钮失灵", "单元门禁打不开", "垃圾桶满了没人清",
         "楼道堆放杂物", "楼上噪音太大", "车辆堵住消防通道", "健身器材松动"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(folder: Path, fake: FakeTelegram, port: int) -> Path:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for old, new in [('url = "sqlite:///gridbot.db"', f'url = "sqlite:///{folder}/page.db"'),
                     ("port = 8080", f"port = {port}"),
                     ("reports_per_person = 10", "reports_per_person = 0"),
                     # alike reports are cases here, not duplicates offered to follow
                     ("duplicate_hours = 72", "duplicate_hours = 0"),
                     ('quiet_hours = "22:00-07:00"', 'quiet_hours = ""'),
                     # the seeding reports all come from this address
                     ("reports_per_hour = 20 ", "reports_per_hour = 10000 ")]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    text += (f'\n[telegram]\ntoken = "{TOKEN}"\nbase_url = "{fake.base_url}"\n'
             f'base_file_url = "{fake.base_file_url}"\nmode = "polling"\n')
    path = folder / "page.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def ledger(config: Config) -> str:
    """M01's households written, and its report link."""
    assert config.web is not None
    store = store_for_url(config.storage_url)
    await store.open()
    try:
        async with store.transaction() as tx:
            await tx.sync_org(config)
            await tx.put_households([
                Household(microgrid="M01", building=f"{b}幢", entrance=f"{u}单元",
                          room=f"{floor}0{u}", head="住户")
                for b in range(1, 13) for u in (1, 2, 3) for floor in range(1, 7)],
                datetime.now(UTC))
        key = links.key_for(config, config.web, lambda: link_key(config, store))
        async with store.transaction() as tx:
            return await links.url(tx, key, links.base_url(config, config.web), "M01")
    finally:
        await store.close()


async def started(process: subprocess.Popen[str], port: int) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if process.poll() is not None:
                break
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code \
                        in (200, 503):
                    return
            await asyncio.sleep(0.05)
    raise SystemExit("gridbot run did not start")


async def report(link: str, count: int) -> None:
    """``count`` cases reported through the page, as phones do (form, token, POST)."""
    async with httpx.AsyncClient(headers={"user-agent": WECHAT_UA}, timeout=30) as phone:
        for n in range(count):
            form = (await phone.get(link)).text
            csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            sent = await phone.post(link, data={
                "csrf": csrf, "text": f"{TEXTS[n % len(TEXTS)]}（第{n + 1}次）",
                "building": f"{n % 12 + 1}幢", "unit": f"{n % 3 + 1}单元", "place": "",
                "name": f"居民{n}", "phone": ""})
            assert sent.status_code == 303, (sent.status_code, sent.text[:500])


async def measure_once(browser: Any, link: str, latency: float,
                       kbps: float) -> dict[str, float]:
    context = await browser.new_context(viewport=PHONE, user_agent=WECHAT_UA,
                                        is_mobile=True, has_touch=True, locale="zh-CN")
    try:
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        kinds: dict[str, str] = {}
        received: dict[str, float] = {}
        cdp.on("Network.responseReceived",
               lambda e: kinds.__setitem__(e["requestId"], e.get("type", "Other")))
        cdp.on("Network.loadingFinished",
               lambda e: received.__setitem__(e["requestId"], e["encodedDataLength"]))
        await cdp.send("Network.enable")
        await cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": latency,
            "downloadThroughput": kbps * 1000 / 8, "uploadThroughput": kbps * 1000 / 8})
        await page.goto(link, wait_until="load")
        # Unthrottled, the load event may come before the first paint: wait for it.
        timing = await page.evaluate("""() => new Promise(resolve => {
            const nav = () => performance.getEntriesByType("navigation")[0].loadEventEnd;
            const answer = paint => resolve({fcp: paint.startTime, load: nav()});
            new PerformanceObserver(list => {
                const paint = list.getEntriesByName("first-contentful-paint")[0];
                if (paint) { answer(paint); }
            }).observe({type: "paint", buffered: true});
            setTimeout(() => resolve({fcp: -1, load: nav()}), 10000);
        })""")
        assert timing["fcp"] >= 0 and timing["load"] > 0, timing
        for _ in range(50):  # the last loadingFinished may follow the load event
            if all(r in received for r in kinds):
                break
            await asyncio.sleep(0.05)
        sizes = {name: 0.0 for name in PAGE_TYPES.values()}
        other = 0.0
        for request, kind in kinds.items():
            if kind in PAGE_TYPES:
                sizes[PAGE_TYPES[kind]] += received.get(request, 0.0)
            else:
                other += received.get(request, 0.0)
        assert sizes["HTML"] and sizes["CSS"] and sizes["JS"], (kinds, received)
        return {**{k: v / 1024 for k, v in sizes.items()}, "other": other / 1024,
                "total": sum(sizes.values()) / 1024, "fcp": timing["fcp"] / 1000,
                "load": timing["load"] / 1000}
    finally:
        await context.close()


async def run(runs: int, cases: int, latency: float, kbps: float) -> list[dict[str, float]]:
    path = chromium()
    if path is None:
        raise SystemExit("no Chromium: install Debian's chromium or set GRIDBOT_CHROMIUM")
    from playwright.async_api import async_playwright

    fake = FakeTelegram()
    await fake.start()
    fake.bot(TOKEN, "BenchResidentsBot")
    results = []
    with tempfile.TemporaryDirectory(prefix="gridbot-page-") as tmp:
        folder, port = Path(tmp), free_port()
        config = load_config(write_config(folder, fake, port))
        link = await ledger(config)
        with (folder / "bot.log").open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gridbot", "--config", str(folder / "page.toml"),
                 "run"], cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=log, text=True)
        try:
            await started(process, port)
            await report(link, cases)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=path,
                    args=["--no-sandbox"] if os.geteuid() == 0 else [])
                try:
                    for _ in range(runs):
                        results.append(await measure_once(browser, link, latency, kbps))
                finally:
                    await browser.close()
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            await fake.stop()
            said = (folder / "bot.log").read_text(encoding="utf-8")
            if "Traceback" in said:
                print(said[-4000:], file=sys.stderr)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="page loads, each cold (5)")
    parser.add_argument("--cases", type=int, default=20,
                        help="open cases the page lists (20: as many as it shows)")
    parser.add_argument("--latency", type=float, default=400.0,
                        help="ms added to every request (400)")
    parser.add_argument("--kbps", type=float, default=400.0,
                        help="kbit/s down and up (400)")
    parser.add_argument("--smoke", action="store_true",
                        help="1 run over 2 cases: that it runs, not what it measures")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.cases = 1, 2
    started_at = time.monotonic()
    results = asyncio.run(run(args.runs, args.cases, args.latency, args.kbps))
    print(f"residents' report page · {args.cases} open cases listed · {args.runs} cold loads"
          f" · {args.kbps:g} kbit/s, {args.latency:g} ms latency · {platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite "
          f"{sqlite3.sqlite_version} · {time.monotonic() - started_at:.0f} s in all")
    runs = " | ".join(f"run {n}" for n in range(1, len(results) + 1))
    print(f"| measure | {runs} | median | worst | limit | worst / limit |")
    print("| --- |" + " ---: |" * (len(results) + 4))
    rows = [("page weight KB (HTML + CSS + JS)", "total", "{:.1f}", LIMIT_KB, " KB"),
            ("first contentful paint, s", "fcp", "{:.2f}", LIMIT_S, " s"),
            ("load event, s", "load", "{:.2f}", LIMIT_S, " s")]
    for label, key, fmt, limit, unit in rows:
        values = [r[key] for r in results]
        worst = max(values)
        print(f"| {label} | " + " | ".join(fmt.format(v) for v in values)
              + f" | {fmt.format(statistics.median(values))} | {fmt.format(worst)} | "
              f"{limit:g}{unit} | {worst / limit:.2f} |")
    first = results[0]
    print(f"(of which HTML {first['HTML']:.1f} KB, CSS {first['CSS']:.1f} KB, JS "
          f"{first['JS']:.1f} KB, uncompressed as gridbot serves them; other requests "
          f"{first['other']:.1f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
