"""Log lines as JSON (``--log-format json``, ``[logging] format``), each line about a
message or a case naming its case number, platform, chat and message id, secrets masked
in JSON too; the HTTP server's access log off unless ``[logging] access_log``."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridbot import logs
from gridbot.cli import main
from tests.fake_telegram import FakeTelegram
from tests.telegram_harness import GROUP_ID, LIU, TOKEN, ZHANG, bound, start_world
from tests.test_telegram import DAMAGE

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after:telegram.warnings.PTBDeprecationWarning")


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the root logger writes, as gridbot's JSON lines (redacted), for this test."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.REDACTOR)
    logs.hide([TOKEN])
    root = logging.getLogger()
    root.addHandler(handler)
    access = logging.getLogger(logs.ACCESS_LOGGER)
    level = access.level
    access.setLevel(logging.INFO)
    # The fake Bot API's uvicorn configures its loggers as uvicorn does by default (their
    # own handlers, not passed on); gridbot's server leaves them alone, so in `gridbot run`
    # they reach the root logger. Here they must be let through again.
    uvicorn = logging.getLogger("uvicorn")
    passed_on = uvicorn.propagate
    uvicorn.propagate = True
    yield buffer
    uvicorn.propagate = passed_on
    access.setLevel(level)
    root.removeHandler(handler)


def entries(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


async def test_json_lines_name_the_case_platform_chat_and_message(
        database: Path, telegram: FakeTelegram, json_lines: io.StringIO) -> None:
    w = await bound(await start_world(database.parent, telegram, "polling"))
    try:
        # the steward's alert about the case fails once
        w.bot.fail("sendMessage", 500, chat_id=ZHANG["id"])
        await w.said(w.group, LIU, "报事 楼道灯坏了")
        await w.write(DAMAGE)  # the case can no longer be read
        status = w.bot.say(w.group, LIU, "进度 1")
        await w.fake.until(lambda: w.rows("SELECT 1 FROM set_aside"))
        logging.getLogger("gridbot.test").warning("calling %s", f"/bot{TOKEN}/getMe")
    finally:
        await w.runtime.stop()
    found = entries(json_lines)
    [aside] = [e for e in found if "set aside" in e["message"]]
    assert aside["level"] == "ERROR" and aside["logger"] == "gridbot.engine"
    assert {k: aside.get(k) for k in ("case", "platform", "chat", "message_id")} == {
        "case": "1", "platform": "telegram", "chat": str(GROUP_ID),
        "message_id": str(status["message_id"])}
    assert "JSONDecodeError" in aside["exception"]
    failed = [e for e in found if e["logger"] == "gridbot.outbox" and "failed" in e["message"]]
    assert failed and failed[0]["case"] == "1" and failed[0]["platform"] == "telegram"
    assert failed[0]["chat"] == str(ZHANG["id"])
    assert failed[0]["outbox"] and failed[0]["time"].endswith("Z")
    [masked] = [e for e in found if e["logger"] == "gridbot.test"]
    assert masked["message"] == "calling /bot***/getMe"
    assert TOKEN not in json_lines.getvalue()


def test_the_text_format_ends_with_what_a_line_is_about() -> None:
    formatter = logs.TextFormatter("%(levelname)s %(name)s: %(message)s")
    logs.hide([])
    with logs.about(platform="telegram", chat="-100", message_id="7"):
        logs.note(case=12)
        record = logging.getLogger("gridbot.x").makeRecord(
            "gridbot.x", logging.WARNING, __file__, 1, "odd", (), None)
    assert formatter.format(record) == \
        "WARNING gridbot.x: odd [case=12 platform=telegram chat=-100 message_id=7]"
    plain = logging.getLogger("gridbot.x").makeRecord(
        "gridbot.x", logging.WARNING, __file__, 1, "odd", (), None)
    assert formatter.format(plain) == "WARNING gridbot.x: odd"


@pytest.mark.parametrize("switch", [False, True])
async def test_the_access_log_is_off_unless_switched_on(
        database: Path, telegram: FakeTelegram, json_lines: io.StringIO, switch: bool) -> None:
    extra = "\n[logging]\naccess_log = true\n" if switch else ""
    w = await start_world(database.parent, telegram, "polling", extra=extra)
    try:
        assert w.runtime.config.access_log is switch and w.runtime.http is not None
        async with httpx.AsyncClient() as client:
            assert (await client.get(w.runtime.http.url + "/healthz")).status_code == 200
    finally:
        await w.runtime.stop()
    lines = [e["message"] for e in entries(json_lines)
             if e["logger"] == logs.ACCESS_LOGGER and "/healthz" in e["message"]]
    assert bool(lines) is switch
    if switch:
        assert '"GET /healthz HTTP/1.1" 200' in lines[0]


def test_the_format_from_the_command_line_or_the_configuration(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = [(h, h.formatter) for h in root.handlers]
    levels = {n: logging.getLogger(n).level for n in ("", "gridbot", logs.ACCESS_LOGGER)}
    try:
        assert main(["--config", str(EXAMPLE), "--log-format", "json", "check-config"]) == 0
        assert all(isinstance(h.formatter, logs.JsonFormatter) for h in root.handlers)
        config = tmp_path / "gridbot.toml"
        config.write_text(EXAMPLE.read_text(encoding="utf-8") + '\n[logging]\nlevel = "WARNING"'
                          '\nformat = "json"\n', encoding="utf-8")
        assert main(["--config", str(config), "check-config"]) == 0
        assert all(isinstance(h.formatter, logs.JsonFormatter) for h in root.handlers)
        assert logging.getLogger("gridbot").level == logging.WARNING
        assert main(["--config", str(config), "--log-format", "text", "--log-level", "DEBUG",
                     "check-config"]) == 0  # the command line wins
        assert all(isinstance(h.formatter, logs.TextFormatter) for h in root.handlers)
        assert logging.getLogger("gridbot").level == logging.DEBUG
        capsys.readouterr()
        with pytest.raises(SystemExit):
            main(["--log-format", "xml", "check-config"])
        assert "--log-format" in capsys.readouterr().err
    finally:
        for handler, formatter in saved:
            handler.setFormatter(formatter)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
