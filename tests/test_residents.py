"""The residents' pages over a real ``gridbot run`` runtime and the fake Bot API: a phone
opens its micro-grid's link, reports with a photo and a building, and the steward gets the
case on Telegram with the photo; the resident confirms and rates on the case page; a
neighbour follows it and sees its news; what is refused (an edited or rotated link, a
form without its token, a photo too large) is refused politely, with nothing lost."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import httpx
from PIL import Image

from gridbot.residents import links
from tests.telegram_harness import LIU, ZHANG, World, bound

WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) "
             "NetType/WIFI Language/zh_CN")


async def link_of(w: World, microgrid: str = "M01") -> str:
    residents = w.runtime.console.residents if w.runtime.console else None
    assert residents is not None
    async with w.runtime.store.transaction() as tx:
        return await residents.link_url(tx, microgrid)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def photo(size: tuple[int, int] = (2400, 1800)) -> bytes:
    """A JPEG as a phone makes it: large, with EXIF naming the phone and where it was."""
    image = Image.new("RGB", size, (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (31.0, 14.0, 0.0), 3: "E", 4: (121.0, 28.0, 0.0)}  # GPS
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=95)
    return out.getvalue()


def phone() -> httpx.AsyncClient:
    return httpx.AsyncClient(follow_redirects=False, timeout=10,
                             headers={"user-agent": WECHAT_UA})


async def test_a_resident_reports_from_the_link_and_the_steward_gets_it(web_world: World) -> None:
    w = await bound(web_world)
    link = await link_of(w)
    async with phone() as her:
        form = await her.get(link)
        assert form.status_code == 200, form.text
        assert "报事" in form.text and 'name="csrf"' in form.text
        before = len(w.bot.sent)
        sent = await her.post(link, data={
            "csrf": csrf_of(form.text), "text": "楼道灯坏了，晚上看不见", "building": "",
            "place": "3幢2单元", "name": "王阿姨", "phone": "13900001111"},
            files={"photo": ("IMG_0001.jpg", photo(), "image/jpeg")})
        assert sent.status_code == 303, sent.text
        assert "/case/1?said=" in sent.headers["location"]
        page = await her.get(link.split("/r/")[0] + sent.headers["location"])
        assert "#1" in page.text and "13900001111" in page.text
        got = await w.settled(before)
        to_zhang = [s for s in got if s.chat_id == ZHANG["id"]]
        assert any("#1" in s.plain and "楼道灯" in s.plain for s in to_zhang), [
            s.plain for s in got]
        assert any(s.media and s.media[0] == "photo" for s in to_zhang)
        case, events = await w.case(1)
        assert case.building == "3" and case.origin_platform == "web"
        kept = events[0].data["attachments"][0]
        data = __import__("base64").b64decode(kept["ref"].split(",", 1)[1])
        with Image.open(io.BytesIO(data)) as image:
            assert max(image.size) <= 1600 and not image.getexif()
        # Nobody in the group learns her phone; the steward claims and resolves in chat.
        await w.said(w.bot.private(ZHANG), ZHANG, "认领 1")
        await w.said(w.bot.private(ZHANG), ZHANG, "办结 1 已换灯泡")
        page = await her.get(link + "/case/1")
        assert 'data-state="resolved"' in page.text
        done = await her.post(link + "/case/1", data={"csrf": csrf_of(page.text),
                                                       "action": "rate", "score": "5",
                                                       "comment": "很快"})
        assert done.status_code == 303
        case, _ = await w.case(1)
        assert case.rating == 5 and case.status.value == "closed"


async def test_a_neighbour_follows_and_sees_its_news(web_world: World) -> None:
    w = await bound(web_world)
    await w.said(w.group, LIU, "报事 3幢楼道灯坏了")
    link = await link_of(w)
    async with phone() as him:
        page = await him.get(link)
        assert "#1" in page.text
        case_page = await him.get(link + "/case/1")
        assert "刘" not in case_page.text  # nobody's name but staff's
        done = await him.post(link + "/case/1", data={"csrf": csrf_of(case_page.text),
                                                       "action": "follow"})
        assert done.status_code == 303
        await w.said(w.bot.private(ZHANG), ZHANG, "认领 1")
        await w.said(w.bot.private(ZHANG), ZHANG, "办结 1 已换灯泡")
        shown = await him.get(link + "/case/1")
        assert "data-following" in shown.text and "data-news" in shown.text, shown.text


async def test_edited_and_rotated_links_are_refused(web_world: World) -> None:
    w = await bound(web_world)
    link = await link_of(w)
    residents = w.runtime.console.residents if w.runtime.console else None
    assert residents is not None
    async with phone() as her:
        edited = link.replace("/M01/", "/M02/")
        assert (await her.get(edited)).status_code == 404
        async with w.runtime.store.transaction() as tx:
            await tx.rotate_report_link("M01", datetime.now(UTC), "test")
        old = await her.get(link)
        assert old.status_code == 410 and 'data-problem="replaced"' in old.text
        new = await link_of(w)
        assert new != link and (await her.get(new)).status_code == 200
        assert links.sign(residents.key, "M01", 2).token in new


async def test_a_form_without_its_token_and_a_huge_photo_are_refused(web_world: World) -> None:
    w = await bound(web_world)
    link = await link_of(w)
    async with phone() as her:
        form = await her.get(link)
        assert (await her.post(link, data={"text": "楼道灯坏了"})).status_code == 403
        big = b"\xff\xd8\xff" + b"0" * (10 * 1024 * 1024)
        refused = await her.post(link, data={"csrf": csrf_of(form.text),
                                              "text": "3幢楼道灯坏了很久"},
                                 files={"photo": ("big.jpg", big, "image/jpeg")})
        assert refused.status_code == 413
        assert "3幢楼道灯坏了很久" in refused.text  # what she wrote is kept
        case, _ = await w.case(1)
        assert case is None


async def test_a_chat_account_linked_to_the_phone_keeps_every_case(web_world: World) -> None:
    w = await bound(web_world)
    await w.said(w.group, LIU, "报事 3幢门口的垃圾三天没人收")  # her chat's own report
    link = await link_of(w)
    async with phone() as her:
        form = await her.get(link)
        sent = await her.post(link, data={"csrf": csrf_of(form.text),
                                          "text": "2幢电梯按钮不亮了", "name": "刘奶奶"})
        assert sent.status_code == 303
        mine = await her.get(link + "/mine")
        coded = await her.post(link + "/mine", data={"csrf": csrf_of(mine.text)})
        found = re.search(r"data-code>\S+ ([A-Z0-9]{4}-[A-Z0-9]{4})<", coded.text)
        assert found, coded.text
        replies = await w.said(w.bot.private(LIU), LIU, f"认证 {found.group(1)}")
        assert replies and replies[0].chat_id == LIU["id"]
        mine = await her.get(link + "/mine")
        assert "#1" in mine.text and "#2" in mine.text  # both, on the phone
        first, _ = await w.case(1)
        second, _ = await w.case(2)
        assert first.reporter_id == second.reporter_id


async def test_a_neighbour_sees_nothing_private_of_a_case(web_world: World) -> None:
    """The page a whole group holds shows a case as the group sees it: no words, name,
    phone, room or photo of its reporter, no private note of its steward."""
    w = await bound(web_world)
    link = await link_of(w)
    async with phone() as her, phone() as him:
        form = await her.get(link)
        sent = await her.post(link, data={
            "csrf": csrf_of(form.text), "text": "我家楼上3幢2单元301天天半夜漏水到201",
            "name": "赵秀英", "phone": "13912345678"},
            files={"photo": ("a.jpg", photo((400, 300)), "image/jpeg")})
        assert sent.status_code == 303
        await w.said(w.bot.private(ZHANG), ZHANG, "认领 1")
        await w.said(w.bot.private(ZHANG), ZHANG, "进展 1 已联系301业主王建国，电话13700000000")
        own = await her.get(link + "/case/1")
        assert "13912345678" in own.text and "/photo/" in own.text
        for page in (await him.get(link + "/case/1"), await him.get(link)):
            assert page.status_code == 200
            # Without the random tokens (the link's signature, the forms' ids), in hex.
            shown = re.sub(r"[0-9a-f]{16,}", "", page.text)
            for secret in ("赵秀英", "13912345678", "301", "201", "漏水到", "王建国",
                           "13700000000"):
                assert secret not in shown, secret
            assert "/photo/" not in page.text
        assert (await him.get(link + "/case/1/photo/0/0")).status_code == 404


async def test_a_form_sent_twice_makes_one_case(web_world: World) -> None:
    """A double tap, or the phone sending again after a lost answer: one case, and both
    answers lead to it."""
    w = await bound(web_world)
    link = await link_of(w)
    async with phone() as her:
        form = await her.get(link)
        once = re.search(r'name="once" value="([0-9a-f]{32})"', form.text)
        assert once
        data = {"csrf": csrf_of(form.text), "once": once.group(1),
                "text": "5幢门禁坏了，刷卡没反应"}
        before = len(w.bot.sent)
        first = await her.post(link, data=data)
        second = await her.post(link, data=data)
        assert first.status_code == second.status_code == 303
        assert "/case/1?" in first.headers["location"] and "/case/1?" in second.headers["location"]
        sent = await w.settled(before)
        assert len([s for s in sent if s.chat_id == ZHANG["id"]]) == 1
        case, _ = await w.case(2)
        assert case is None


async def test_a_phone_set_to_english_gets_english_pages(web_world: World) -> None:
    w = await bound(web_world)
    link = await link_of(w)
    async with httpx.AsyncClient(timeout=10, headers={"accept-language": "en-GB,en;q=0.9"}) as c:
        page = await c.get(link)
        assert page.status_code == 200 and "What happened" in page.text
        # the org's own names, the bot's, and the urgent words the script looks for
        shown = re.sub(r'幸福里[^<]*|网格助手|data-urgent="[^"]*"', "", page.text)
        assert not re.search(r"[\u4e00-\u9fff]", shown), re.findall(r".{20}[\u4e00-\u9fff]+.{5}",
                                                                  shown)[:5]


async def test_forgetting_a_page_resident_leaves_nothing_of_hers(web_world: World) -> None:
    """`gridbot forget` on someone the page made: her phone, words and photo go, and her
    phone's cookie leads to nobody (a new report would be a stranger's)."""
    from gridbot.residents import identity
    from gridbot.store import forget as forgetting

    w = await bound(web_world)
    link = await link_of(w)
    async with phone() as her:
        form = await her.get(link)
        sent = await her.post(link, data={
            "csrf": csrf_of(form.text), "text": "我家楼道灯坏了，晚上看不见",
            "name": "钱秀兰", "phone": "13911112222", "place": "3幢2单元"},
            files={"photo": ("a.jpg", photo((400, 300)), "image/jpeg")})
        assert sent.status_code == 303
        case, _ = await w.case(1)
        person_id = case.reporter_id
        assert person_id.startswith("~web:")
        async with w.runtime.store.transaction() as tx:
            await tx.forget_person(person_id, new_id=forgetting.anonymous_id(),
                                   name="（已注销）", text="（已注销）", message="（已注销）")
        dump = "\n".join(str(r) for table in ("people", "accounts", "cases", "case_events",
                                              "outbox")
                         for r in w.rows(f"SELECT * FROM {table}"))
        for secret in ("钱秀兰", "13911112222", "晚上看不见", "data:image/jpeg"):
            assert secret not in dump, secret
        residents = w.runtime.console.residents if w.runtime.console else None
        assert residents is not None
        device = identity.device_of(residents.key, her.cookies.get(identity.COOKIE))
        assert device is not None
        async with w.runtime.store.transaction() as tx:
            assert (await identity.find(tx, residents.key, device)).person is None
        mine = await her.get(link + "/mine")
        assert "#1" not in mine.text
