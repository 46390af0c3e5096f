"""Office commands from cron: every platform enabled with its secrets as ``env:…`` and none
of those variables set, as in cron's bare environment. Only ``gridbot run`` needs them;
``check-config`` says which are missing (a warning, an error with ``--strict``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gridbot.cli import main
from gridbot.config import load_config
from gridbot.domain import Chat, ChatKind
from gridbot.store import SQLiteStore
from tests.conftest import EXAMPLE_CONFIG, ROOT

SECRETS = ("GRIDBOT_CRON_TG_TOKEN", "GRIDBOT_CRON_TG_HOOK", "GRIDBOT_CRON_WECOM_SECRET",
           "GRIDBOT_CRON_WECOM_TOKEN", "GRIDBOT_CRON_WECOM_AES", "GRIDBOT_CRON_MP_SECRET",
           "GRIDBOT_CRON_MP_TOKEN", "GRIDBOT_CRON_ROBOT")
PLATFORMS = """
[telegram]
token = "env:GRIDBOT_CRON_TG_TOKEN"
mode = "webhook"
webhook_url = "https://gridbot.example.org/telegram/webhook"
webhook_secret = "env:GRIDBOT_CRON_TG_HOOK"

[wechat.work]
corp_id = "ww0123456789abcdef"
agent_id = 1000002
secret = "env:GRIDBOT_CRON_WECOM_SECRET"
token = "env:GRIDBOT_CRON_WECOM_TOKEN"
encoding_aes_key = "env:GRIDBOT_CRON_WECOM_AES"

[wechat.mp]
app_id = "wx0123456789abcdef"
secret = "env:GRIDBOT_CRON_MP_SECRET"
token = "env:GRIDBOT_CRON_MP_TOKEN"

[wechat.robots]
M01 = "env:GRIDBOT_CRON_ROBOT"
"""


async def bind_a_group(config_path: Path) -> None:
    config = load_config(config_path, secrets=False)
    store = SQLiteStore(config.storage_url.removeprefix("sqlite:///"))
    await store.open()
    try:
        async with store.transaction() as tx:
            await tx.save_chat(Chat(platform="telegram", chat_id="-1001", kind=ChatKind.GROUP,
                                    title="幸福里1-3幢", microgrid="M01"),
                               bound_by="zhou", now=datetime.now(UTC))
    finally:
        await store.close()


@pytest.fixture
def office(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """config.example.toml with every platform, in a folder of its own, run from there."""
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "gridbot.toml"
    path.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8") + PLATFORMS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return path


def test_the_configuration_reads_without_its_secrets(office: Path) -> None:
    config = load_config(office, secrets=False)
    assert config.telegram is not None and config.wecom is not None
    assert config.official_account is not None and set(config.wecom_robots) == {"M01"}
    # as written, not read
    assert config.telegram.token.get_secret_value() == "env:GRIDBOT_CRON_TG_TOKEN"
    assert [key for key, _ in config.missing_secrets()] == [
        "telegram.token", "telegram.webhook_secret", "wechat.work.secret", "wechat.work.token",
        "wechat.work.encoding_aes_key", "wechat.mp.secret", "wechat.mp.token",
        "wechat.robots.M01"]


@pytest.mark.slow
@pytest.mark.parametrize("argv", [
    ["backup", "nightly.db"],
    ["report", "--month", "2026-11", "--out", "reports"],
    ["export", "--since", "2026-11-01", "--out", "cases.csv"],
    ["audit"],
    ["link-code", "张阿姨"],
    ["link-code", "--all-unlinked", "--scope", "M02", "--out", "cards", "--bot", "XfBot"],
    ["people"],
    ["forget", "刘奶奶"],
    ["forget", "刘奶奶", "--yes"],
    ["import", str(ROOT / "examples" / "roster.xlsx"),
     str(ROOT / "examples" / "roster-households.csv")],
    ["notice", "--scope", "all", "--text", "周六停水", "--no-wait"],
    ["restore", "--check", "nightly.db"],
], ids=lambda argv: " ".join(argv[:2]))
def test_office_commands_work_with_no_secret_set(
        office: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit"]) == 0  # the database exists (a first command creates it)
    if argv[0] == "restore":
        assert main(["backup", "nightly.db"]) == 0
    if argv[0] == "notice":  # a group to send to
        asyncio.run(bind_a_group(office))
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr()
    assert "GRIDBOT_CRON" not in printed.out + printed.err
    assert "配置有误" not in printed.err and "Traceback" not in printed.err


def test_run_needs_them_and_names_the_first_missing(office: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "配置有误" in err and "telegram.token" in err and "GRIDBOT_CRON_TG_TOKEN" in err


def test_check_config_warns_about_each_missing_secret(
        office: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["check-config"]) == 0
    printed = capsys.readouterr()
    assert "配置无误" in printed.out
    # (after them, the rostered people nobody can reach yet: tests/test_reach.py)
    warnings = [w for w in printed.err.strip().splitlines() if "环境变量" in w]
    assert len(warnings) == len(SECRETS)
    assert all(w.startswith("提醒：") for w in warnings)
    assert "telegram.token 读取环境变量 GRIDBOT_CRON_TG_TOKEN，但现在没有设置" in warnings[0]
    assert main(["check-config", "--strict"]) == 2
    assert all(w.startswith("错误：") for w in capsys.readouterr().err.strip().splitlines()
               if "环境变量" in w)
    # all set: their values are checked (a bad AES key is an error), and never echoed
    for name in SECRETS:
        monkeypatch.setenv(name, "x" * 43 if "AES" in name else "value_1")
    monkeypatch.setenv("GRIDBOT_CRON_WECOM_AES", "too-short-secret")
    assert main(["check-config"]) == 2
    err = capsys.readouterr().err
    assert "wechat.work.encoding_aes_key" in err and "too-short-secret" not in err
    monkeypatch.setenv("GRIDBOT_CRON_WECOM_AES", "x" * 43)
    assert main(["check-config", "--strict"]) == 0
    assert "环境变量" not in capsys.readouterr().err


def test_from_cron_with_a_bare_environment(office: Path) -> None:
    """The way cron runs it: a new process, with none of the variables."""
    assert main(["audit"]) == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_CRON")}
    run = subprocess.run([sys.executable, "-m", "gridbot", "backup", "nightly.db"],
                         cwd=office.parent, env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert "已备份到 nightly.db" in run.stdout and run.stderr == ""
