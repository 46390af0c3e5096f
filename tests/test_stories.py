"""The example stories of issue 20, run as people run them: ``gridbot demo --script``."""

from __future__ import annotations

from tests.test_cli_demo import gridbot


def _said(out: str, who: str) -> list[str]:
    """The messages to one private chat or group, as the demo prints them."""
    return [block.split("\n  → ")[0] for block in out.split(f"  → {who}: ")[1:]]


def test_errand_for_a_neighbour_with_money_advanced_and_a_proof_photo() -> None:
    run = gridbot("demo", "--script", "examples/story_errand.txt")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "已登记代办 #1（买药取药），交给 张阿姨。" in _said(out, "群「幸福里1-3幢」")[0]
    assert "[接单 #1 ⇒ /take 1]" in _said(out, "私聊 徐大姐")[0]
    assert any("请和 徐大姐 结清" in m for m in _said(out, "私聊 刘奶奶"))
    done = next(m for m in _said(out, "私聊 刘奶奶") if "#1 已办结" in m)
    assert "📎 photo: photo:receipt.jpg" in done
    assert "代办 #1 垫付的 35.50 元 已结清。" in out
    for message in _said(out, "群「幸福里1-3幢」"):
        assert "137-0000-0301" not in message and "王奶奶" not in message


def test_patrol_visit_that_becomes_a_case() -> None:
    run = gridbot("demo", "--script", "examples/story_patrol.txt")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "[转为工单（走访 #1） ⇒ /tocase 1]" in out
    assert "内容：3幢 反映楼道堆物，消防通道被纸箱堵了" in out
    assert "走访 #1 已经转为工单 #1" in out


def test_shift_swap_changes_where_the_next_report_goes() -> None:
    run = gridbot("demo", "--script", "examples/story_swap.txt")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "值班变动：11月24日（周二） 张阿姨 的值班由 李师傅 接替" in out
    assert "· 11月24日（周二） 由 李师傅 接替您（#1）" in out
    report = out.split("刘奶奶 在群「幸福里1-3幢」说：报事")[1]
    assert "已通知微网管家 李师傅" in report
    assert "  → 私聊 李师傅: 新工单 #1，请认领\n      （您接了换班，今天由您值班）" in report
