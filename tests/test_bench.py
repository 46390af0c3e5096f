"""Every benchmark under bench/ still runs to the end and prints its table.

Benchmarks rot silently: nobody runs them until someone needs a figure, and then
bench/telegram.py waited forever, because a later per-person report limit refused the
11th report of each of its residents and the messages it waited for never came. So each
bench has a small ``--smoke`` mode (a few seconds, sizes too small to mean anything) and
sets what it needs explicitly (report limits off, quiet hours off); here each runs that
way as a subprocess, as a person would run it, and must exit 0 and print its table.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import postgres
from tests.browser import chromium

ROOT = Path(__file__).resolve().parent.parent
#: each bench and a line its table prints
TABLES = {
    "console.py": "| board, first page (subdistrict admin) |",
    "idle.py": "% of one core",
    "intake.py": "reports per commit",
    "memory.py": "| phase                              | resident MB |",
    "notices.py": "| run | groups | write notice s |",
    "residents_page.py": "| first contentful paint, s |",
    "sweep.py": "stored cases | due | idle sweep µs",
    "telegram.py": "gridbot reports/s",
    "transport.py": "CPU ratio aiohttp / httpx",
    "workers.py": "reports/s handled",
}
#: more than --smoke, where a bench has modes that must all keep working
ARGS = {"telegram.py": ["--fake", "both"]}


def test_every_bench_has_a_smoke_run_here() -> None:
    assert sorted(TABLES) == sorted(p.name for p in (ROOT / "bench").glob("*.py"))


@pytest.mark.slow(29)
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=[pytest.mark.postgresql] if name == "workers.py" else [])
    for name in sorted(TABLES)])
def test_bench_runs_to_the_end(name: str) -> None:
    if name == "workers.py":
        postgres.require()
    if name == "residents_page.py" and chromium() is None and not os.environ.get("CI"):
        pytest.skip("no Chromium for the residents' page bench (tests/browser.py)")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / name), "--smoke",
                           *ARGS.get(name, [])], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert TABLES[name] in done.stdout, done.stdout
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    if name == "telegram.py":  # the fake Bot API in a process of its own, and in-process
        assert "own process" in done.stdout and "in-process" in done.stdout, done.stdout
