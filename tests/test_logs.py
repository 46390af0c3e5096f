"""Logging: ``--log-level``, and no secret in any log line, DEBUG included (issue 14, item 9).

At DEBUG the HTTP libraries log every request URL: Telegram's token is part of each Bot
API URL, WeChat puts ``corpsecret`` and ``access_token`` in query strings, a group robot's
key is in its webhook URL. The real command runs here at DEBUG against the local fake
Bot API and the fake WeChat, through python-telegram-bot/aiohttp and wechatpy/requests/
urllib3 as in production, and its whole log is searched for every secret.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gridbot import logs
from gridbot.cli import main
from gridbot.config import load_config
from tests.fake_telegram import FakeTelegram
from tests.fake_wechat import FakeWeChat, WeComServer
from tests.telegram_harness import CHEN, SECRET, TOKEN
from tests.telegram_harness import write_config as telegram_config
from tests.wechat_harness import (
    MP_AES,
    MP_TOKEN,
    ROBOT_M01,
    WORK_AES,
    WORK_TOKEN,
    ZHANG,
    ZHOU,
)
from tests.wechat_harness import write_config as wechat_config

# as the Telegram adapter does when built (pytest resets filters for each test)
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after:telegram.warnings.PTBDeprecationWarning")


@pytest.fixture
def levels() -> Iterator[None]:
    """Put the loggers' levels back: ``logs.setup`` sets them for the whole process."""
    names = ["", *logs.OWN, *logs.LIBRARIES]
    saved = {n: logging.getLogger(n).level for n in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_records_are_redacted_in_message_arguments_and_exceptions(
        levels: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    logs.setup("DEBUG")
    logs.hide(["7001234567:AAFsecret-token-value_0123456789", "webhook-secret-abcdef",
               "x"])  # too short to mask: ordinary words would go
    log = logging.getLogger("httpx")
    log.debug("HTTP Request: POST %s", "https://api.telegram.org/bot7001234567:"
              "AAFsecret-token-value_0123456789/getUpdates")
    log.debug("headers %r", {"X-Telegram-Bot-Api-Secret-Token": "webhook-secret-abcdef"})
    logging.getLogger("urllib3.connectionpool").debug(
        '"GET /cgi-bin/gettoken?corpid=ww01&corpsecret=plain-corp-secret HTTP/1.1" 200 66')
    logging.getLogger("wechatpy").debug(
        'Response: {"access_token": "tok-abcdef-123", "expires_in": 7200} from '
        "/cgi-bin/message/send?access_token=tok-abcdef-123&debug=1")
    logging.getLogger("gridbot.migrate").info("to postgresql://gridbot:pg-password@db/gridbot")
    url = "https://api.telegram.org/bot{}:AAA_{}/sendMessage".format(9990001112, "b" * 32)
    try:
        raise httpx.ConnectError(f"failed: {url}")
    except httpx.ConnectError:
        logging.getLogger("gridbot.outbox").exception("sending failed")
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for secret in ("AAFsecret-token-value", "webhook-secret-abcdef", "plain-corp-secret",
                   "tok-abcdef-123", "pg-password", "AAA_bbbbbbbb", "9990001112"):
        assert secret not in text, secret
    assert "/bot***/getUpdates" in text and "corpsecret=***" in text
    assert "access_token=***&debug=1" in text and "postgresql://gridbot:***@db" in text
    assert "Traceback" in text and "ConnectError: failed: https://api.telegram.org/bot***/" \
        in text  # the exception is still told
    assert "corpid=ww01" in text  # what is not secret stays readable


def test_the_log_level_option(levels: None, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    config = EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"
    assert main(["--config", str(config), "--log-level", "debug", "check-config"]) == 0
    assert logging.getLogger("gridbot").level == logging.DEBUG
    assert logging.getLogger().level == logging.DEBUG  # the libraries too
    assert main(["--config", str(EXAMPLE), "check-config"]) == 0
    assert logging.getLogger("gridbot").level == logging.INFO  # the default
    assert logging.getLogger().level == logging.WARNING  # libraries: problems only
    assert main(["check-config", "--log-level", "ERROR", "--config", str(EXAMPLE)]) == 0
    assert logging.getLogger("gridbot").level == logging.ERROR
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--log-level", "LOUD", "check-config"])
    assert "--log-level" in capsys.readouterr().err


def test_every_secret_of_the_configuration_is_known(tmp_path: Path) -> None:
    fake = FakeWeChat()
    fake.port = 1
    config = load_config(wechat_config(tmp_path, fake))
    found = set(logs.secrets_of(config))
    assert {fake.corp_secret, fake.mp_secret, WORK_TOKEN, WORK_AES, MP_TOKEN, MP_AES,
            ROBOT_M01} <= found


def _gridbot(config: Path, *args: str) -> subprocess.Popen[str]:
    """``gridbot --log-level DEBUG … run``; its log goes to a file (a pipe nobody reads
    while the test waits would fill up and stop the bot mid-line)."""
    log = (config.parent / "gridbot.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "gridbot", "--log-level", "DEBUG", "--config", str(config),
         *args], stdout=subprocess.PIPE, stderr=log, text=True, cwd=config.parent,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


async def _started(process: subprocess.Popen[str]) -> str:
    """The base URL of the HTTP server, from the line ``gridbot run`` prints at start."""
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
    found = re.search(r"(http://\S+)/healthz", line)
    assert found is not None, line
    return found[1]


async def _stopped(process: subprocess.Popen[str], folder: Path) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, _ = await asyncio.to_thread(process.communicate, timeout=30)
    err = (folder / "gridbot.log").read_text(encoding="utf-8")
    assert process.returncode == 0, err[-3000:]
    return out, err


@pytest.mark.slow
async def test_debug_log_of_gridbot_run_on_telegram_holds_no_secret(
        tmp_path: Path, telegram: FakeTelegram) -> None:
    bot = telegram.bot(TOKEN, "GridTestBot")
    process = _gridbot(telegram_config(tmp_path, telegram, mode="webhook"), "run")
    try:
        bot.deliver_to = await _started(process) + "/telegram/webhook"
        assert bot.webhook_secret == SECRET  # registered, so it went through the libraries
        bot.say(bot.private(CHEN), CHEN, "/help")
        await telegram.until(lambda: bot.sent_to(CHEN["id"]), timeout=15)
        out, err = await _stopped(process, tmp_path)
    finally:
        if process.poll() is None:
            process.kill()
    # The libraries did log at DEBUG, URLs included, and every secret is masked.
    assert "DEBUG telegram" in err and "DEBUG gridbot.adapters.telegram.transport" in err, \
        err[-3000:]
    assert "HTTP Request: POST" in err and "/bot***/sendMessage" in err
    assert "Unclosed" not in err  # the HTTP client's sessions and connections were closed
    for secret in (TOKEN, TOKEN.split(":", 1)[1], SECRET):
        assert secret not in out + err, secret


@pytest.mark.slow
async def test_debug_log_of_gridbot_run_on_wechat_holds_no_secret(
        tmp_path: Path, wechat: FakeWeChat) -> None:
    config = wechat_config(tmp_path, wechat)
    process = _gridbot(config, "run")
    try:
        base = await _started(process)
        wecom = WeComServer(base + "/wechat/work", token=WORK_TOKEN, aes_key=WORK_AES,
                            corp_id=wechat.corp_id, agent_id=wechat.agent_id)
        assert (await wecom.say(ZHANG, "帮助")).status_code == 200
        await wechat.until(lambda: wechat.sent_to(ZHANG), timeout=15)
        # A code made by another process (gridbot link-code) links in the running bot:
        # both read the same key file. Then a notice goes out through the group robot,
        # whose key is in its webhook's URL.
        coded = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "gridbot", "--config", str(config),
                             "link-code", "周社工"], capture_output=True, text=True, timeout=60)
        code = coded.stdout.split("认证码：")[1].split()[0]
        assert (await wecom.say(ZHOU, f"认证 {code}")).status_code == 200
        await wechat.until(lambda: "认证成功" in "".join(s.text for s in wechat.sent_to(ZHOU)),
                           timeout=15)
        assert (await wecom.say(ZHOU, "通知 M01 周六上午9点量血压")).status_code == 200
        await wechat.until(lambda: wechat.sent_to(ROBOT_M01), timeout=15)
        out, err = await _stopped(process, tmp_path)
    finally:
        if process.poll() is None:
            process.kill()
    assert wechat.tokens, "access tokens were issued"
    assert "DEBUG urllib3" in err and "gettoken" in err, err[-3000:]
    assert "corpsecret=***" in err and "access_token=***" in err and "key=***" in err
    for secret in (wechat.corp_secret, wechat.mp_secret, WORK_TOKEN, WORK_AES, MP_TOKEN,
                   MP_AES, ROBOT_M01, *wechat.tokens):
        assert secret not in out + err, secret
