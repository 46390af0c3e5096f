"""The ``gridbot`` command as people run it: demo scripts, interactive demo, link codes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_CONFIG, ROOT


def gridbot(*args: str, stdin: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gridbot", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, cwd=cwd, check=False)


def test_corridor_light_story_prints_every_message_with_its_recipient() -> None:
    run = gridbot("demo", "--script", "examples/story_corridor_light.txt")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stdout.splitlines()
    starts = [line for line in lines if line.startswith("  → ")]
    assert starts[0].startswith("  → 群「幸福里1-3幢」: 收到，已登记为 #1")
    assert starts[1].startswith("  → 私聊 张阿姨: 新工单 #1，请认领")
    assert any(s.startswith("  → 私聊 刘奶奶: 您报的 #1") for s in starts)
    assert any(s.startswith("  → 私聊 刘奶奶: #1 有新进展") for s in starts)
    assert any(s.startswith("  → 私聊 刘奶奶: #1 已办结") for s in starts)
    assert starts[-1].startswith("  → 私聊 张阿姨: 居民对 #1 的评价：★★★★★")
    assert "⏱ 过了 5h，现在是 11-23 15:00" in run.stdout
    # Personal details only ever go to the assignee's private chat.
    for line in starts:
        if "137-0000-0301" in line:
            raise AssertionError(f"phone number outside the steward's chat: {line}")
    block = run.stdout.split("  → 私聊 张阿姨: 新工单 #1")[1].split("\n[")[0]
    assert "137-0000-0301" in block


def test_reopen_story_and_its_mistakes() -> None:
    run = gridbot("demo", "--script", "examples/story_reopen.txt")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "→ 私聊 李师傅: 重新打开的工单 #1" in out
    assert "→ 私聊 张阿姨: 转交给您的工单 #1" in out
    assert "居民不能使用这个命令" in out
    assert "找不到工单 #99" in out
    assert "用法：办结 工单号" in out
    assert out.rstrip().splitlines()[-1].startswith("  → 私聊 张阿姨: 格式不对")


def test_escalation_story_climbs_the_ladder_on_time() -> None:
    run = gridbot("demo", "--script", "examples/story_escalation.txt")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    # Each thing the clock does is printed under the minute it happened.
    blocks = out.split("⏰ 到点了，机器人自动：")
    stamps = [b.rsplit("\n", 1)[-1] for b in blocks[:-1]]
    assert stamps == ["[11-23 10:30] ", "[11-23 11:00] ", "[11-23 12:30] ", "[11-23 13:00] ",
                      "[11-26 14:30] "]
    assert "→ 私聊 李师傅: ⏰ 提醒：#1 请在 11-23 11:00 前认领" in out
    assert "→ 私聊 王网格长: 上报给您的工单 #1" in out
    assert "→ 私聊 周社工: 上报给您的工单 #1" in out
    assert "→ 私聊 郑科长: 周社工 申请 #1 认领期限延期 1小时" in out
    assert "→ 私聊 周社工: 郑科长 已批准 #1 延期，新期限 11-23 16:00。" in out
    assert "上报给您的工单 #1" not in out.split("批准 1")[1]  # claimed in time
    assert "→ 私聊 黄阿姨: #1 办结后 3天 没有收到您的回复，已关闭。" in out
    assert "无反馈，自动关闭" in out


def test_a_bad_script_gets_clear_answers_and_goes_on(tmp_path: Path) -> None:
    script = tmp_path / "bad.txt"
    script.write_text(
        "# comments and blank lines are fine\n\n"
        "王小二: 报事 我不在配置里\n"
        "刘奶奶: 报事 楼道灯坏了\n"
        "@wait soon\n"
        "@dance\n"
        "张阿姨> 认领 42\n"
        "张阿姨> 认领 一\n"
        "张阿姨> 认领 1\n", encoding="utf-8")
    run = gridbot("demo", "--script", str(script))
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "不认识「王小二」" in out
    assert "「soon」不是时长" in out
    assert "第 6 行看不懂：@dance" in out
    assert "找不到工单 #42" in out
    assert "用法：认领 工单号" in out
    assert "已认领 #1" in out


def test_a_newcomer_can_speak_in_a_named_group(tmp_path: Path) -> None:
    script = tmp_path / "guest.txt"
    script.write_text("小吴@M02: 报事 5幢门口电动车乱停\n李师傅> 认领 1\n", encoding="utf-8")
    run = gridbot("demo", "--script", str(script))
    assert run.returncode == 0, run.stderr
    assert "→ 群「幸福里4-6幢」: 收到，已登记为 #1" in run.stdout
    # Not reachable in private: told in the group, without the case text.
    assert "→ 群「幸福里4-6幢」: 您报的 #1 已由微网管家 李师傅 认领，正在处理。" in run.stdout


def test_missing_script_is_a_clear_error() -> None:
    run = gridbot("demo", "--script", "no/such/file.txt")
    assert run.returncode == 2
    assert "找不到脚本文件" in run.stderr and "Traceback" not in run.stderr


def test_demo_with_an_explicit_config_and_a_kept_database(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    run = gridbot("--config", str(EXAMPLE_CONFIG), "demo", "--script",
                  "examples/story_corridor_light.txt", "--db", str(db))
    assert run.returncode == 0, run.stderr
    assert db.exists()
    # Playing it again on the same database continues numbering: the story's #1 is closed.
    again = gridbot("demo", "--config", str(EXAMPLE_CONFIG), "--script",
                    "examples/story_corridor_light.txt", "--db", str(db))
    assert "收到，已登记为 #2" in again.stdout


def test_interactive_demo_switches_persona_and_reads_stdin() -> None:
    run = gridbot("demo", stdin="@as 刘奶奶\n报事 电梯坏了\n> 进度\n@who\n@quit\n")
    assert run.returncode == 0, run.stderr
    assert "现在你是 刘奶奶" in run.stdout
    assert "→ 群「幸福里1-3幢」: 收到，已登记为 #1" in run.stdout
    assert "→ 私聊 刘奶奶: 您报的事中，正在处理的" in run.stdout
    assert "可以扮演的人" in run.stdout


def test_persona_lines_may_hold_colons_and_angle_brackets() -> None:
    run = gridbot("demo", stdin="@as Tom\n/report lift stuck at 8:30, <b>again</b> & again\n"
                               "钱大姐> 认领 1\n> /status 1\n")
    assert run.returncode == 0, run.stderr
    assert "Tom in group \"桂花园东区\"" not in run.stdout  # the demo speaks the config locale
    assert "Tom 在群「桂花园东区」说：/report lift stuck at 8:30, <b>again</b> & again" \
        in run.stdout
    assert "→ 私聊 钱大姐: 已认领 #1" in run.stdout
    assert "→ 私聊 Tom: #1 in progress" in run.stdout


def test_interactive_demo_without_persona_says_how(tmp_path: Path) -> None:
    run = gridbot("demo", stdin="hello\n")  # ends at end of input
    assert run.returncode == 0
    assert "先用「@as 名字」选一个人" in run.stdout


@pytest.fixture
def deployed(tmp_path: Path) -> Path:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        'url = "sqlite:///gridbot.db"', 'url = "sqlite:///state/gridbot.db"')
    (tmp_path / "state").mkdir()
    path = tmp_path / "gridbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow(42)
def test_link_code_command(deployed: Path) -> None:
    run = gridbot("--config", str(deployed), "link-code", "王网格长", "--ttl", "24h")
    assert run.returncode == 0, run.stderr
    match = re.search(r"认证码：([A-Z2-9]{4}-[A-Z2-9]{4})", run.stdout)
    assert match, run.stdout
    assert (deployed.parent / "state" / "gridbot.db").exists()
    assert gridbot("--config", str(deployed), "link-code", "nobody").returncode == 1
    bad = gridbot("--config", str(deployed), "link-code", "wang", "--ttl", "forever")
    assert bad.returncode == 2 and "--ttl" in bad.stderr


def test_default_config_is_gridbot_toml_in_the_working_directory(
    deployed: Path
) -> None:
    run = gridbot("check-config", cwd=deployed.parent)
    assert run.returncode == 0, run.stderr
    assert "4 个微网格" in run.stdout
    missing = gridbot("check-config", cwd=deployed.parent / "state")
    assert missing.returncode == 2 and "gridbot.toml" in missing.stderr


def test_version() -> None:
    run = gridbot("--version")
    assert run.returncode == 0 and run.stdout.startswith("gridbot ")
