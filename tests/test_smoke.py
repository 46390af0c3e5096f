from tests.conftest import Bot, to


async def test_report_reaches_group_and_steward(bot: Bot) -> None:
    out = await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    assert "#1" in to(out, "M01")[0]
    assert "认领 1" in to(out, "zhang")[0]
