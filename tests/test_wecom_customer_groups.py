"""WeCom customer groups (客户群, issue 19 item 1): listed for every steward, bound to
micro-grids by rule or by hand, kept current by wechatpy-encrypted ``change_external_chat``
callbacks, shown in /healthz, ``gridbot groups`` / ``people``, and never taken for a chat
the bot can post into. Against the fake WeCom API (tests/fake_wechat.py)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gridbot.adapters.wechat.customer_groups import PLATFORM, CustomerGroupAdapter
from gridbot.cli.dispatch import main
from gridbot.domain import CustomerGroup
from tests.fake_wechat import FakeWeChat
from tests.wechat_harness import ZHANG, World, start_world

LI = "liayi"
GROUPS = """
[wechat.work.customer_groups]
owner_rule = true

[wechat.work.customer_groups.names]
M03 = "^桂花园.*3号楼"
"""


@pytest.fixture
async def world(database: Path, wechat: FakeWeChat) -> AsyncIterator[World]:
    wechat.members.add(LI)
    # Two groups of 张阿姨 (M01's steward), one of 李 (M02's), one of someone not a steward.
    wechat.add_customer_group("wrA1", "幸福里1号楼居民群", ZHANG, members=40)
    wechat.add_customer_group("wrA2", "幸福里2号楼居民群", ZHANG, members=25)
    wechat.add_customer_group("wrB1", "和平路居民群", LI, members=31)
    wechat.add_customer_group("wrZ9", "社区志愿者群", "zhoushegong", members=9)
    w = await start_world(database.parent, wechat, "safe", extra=GROUPS)
    await w.link(ZHANG, "zhang")
    await w.link(LI, "li")
    yield w
    await w.runtime.stop()


def adapter(w: World) -> CustomerGroupAdapter:
    found = next(a for a in w.runtime.adapters if a.name == PLATFORM)
    assert isinstance(found, CustomerGroupAdapter)
    return found


async def groups(w: World, *, dismissed: bool = True) -> dict[str, CustomerGroup]:
    async with w.runtime.store.transaction() as tx:
        return {g.chat_id: g for g in await tx.customer_groups(dismissed=dismissed)}


async def event(w: World, chat_id: str, change: str, detail: str = "") -> httpx.Response:
    return await w.wecom.post(w.wecom.external_chat(chat_id, change, detail))


async def test_three_groups_of_two_stewards_are_bound_by_the_owner_rule(world: World) -> None:
    assert await adapter(world).sync()
    found = await groups(world)
    # Only the stewards' groups are listed (owner_filter), each read with groupchat/get.
    assert set(found) == {"wrA1", "wrA2", "wrB1"}
    listed = [body for api, body in world.fake.calls if api == "externalcontact/groupchat/list"]
    assert sorted(listed[-1]["owner_filter"]["userid_list"]) == [LI, ZHANG]
    assert {c: (g.microgrid, g.bound_by, g.owner_id, g.members) for c, g in found.items()} == {
        "wrA1": ("M01", "owner", ZHANG, 41), "wrA2": ("M01", "owner", ZHANG, 26),
        "wrB1": ("M02", "owner", LI, 32)}
    assert found["wrA1"].name == "幸福里1号楼居民群"
    # Not a chat the bot posts into: routing and notices see no new group.
    async with world.runtime.store.transaction() as tx:
        chats = [c for m in ("M01", "M02") for c in await tx.group_chats(m)]
    assert chats and all(c.platform != PLATFORM for c in chats)
    # A second sync changes nothing but when they were seen.
    assert await adapter(world).sync()
    again = await groups(world)
    assert {c: (g.microgrid, g.bound_at, g.members) for c, g in again.items()} == \
        {c: (g.microgrid, g.bound_at, g.members) for c, g in found.items()}


async def test_callbacks_keep_names_and_members_current_and_a_dismissed_group_is_unbound(
        world: World) -> None:
    assert await adapter(world).sync()
    fake = world.fake
    # Created: read at once, bound by its owner.
    fake.add_customer_group("wrA3", "幸福里3号楼居民群", ZHANG, members=5)
    assert (await event(world, "wrA3", "create")).status_code == 200
    assert (await groups(world))["wrA3"].microgrid == "M01"
    # Renamed, and residents join and leave.
    fake.customer_groups["wrA1"]["name"] = "幸福里1号楼（新）"
    assert (await event(world, "wrA1", "update", "change_name")).status_code == 200
    fake.customer_groups["wrB1"]["members"] += ["wm-new-1", "wm-new-2"]
    assert (await event(world, "wrB1", "update", "add_member")).status_code == 200
    fake.customer_groups["wrA2"]["members"] = fake.customer_groups["wrA2"]["members"][:10]
    assert (await event(world, "wrA2", "update", "del_member")).status_code == 200
    found = await groups(world)
    assert found["wrA1"].name == "幸福里1号楼（新）"
    assert (found["wrB1"].members, found["wrA2"].members) == (34, 10)
    # The owner changes: the owner rule follows the new owner.
    fake.customer_groups["wrA3"]["owner"] = LI
    assert (await event(world, "wrA3", "update", "change_owner")).status_code == 200
    assert (await groups(world))["wrA3"].microgrid == "M02"
    # Dismissed: it loses its binding and keeps its row.
    del fake.customer_groups["wrA2"]
    assert (await event(world, "wrA2", "dismiss")).status_code == 200
    gone = (await groups(world))["wrA2"]
    assert gone.microgrid is None and gone.dismissed_at is not None
    assert "wrA2" not in await groups(world, dismissed=False)
    health = adapter(world).health()
    assert (health["groups"], health["bound"], health["dismissed"]) == (3, 3, 1)
    # A group dismissed while the bot was away: the next sync finds it gone.
    del fake.customer_groups["wrA3"]
    assert await adapter(world).sync()
    assert (await groups(world))["wrA3"].microgrid is None


async def test_forged_and_unreadable_group_events_change_nothing(world: World) -> None:
    assert await adapter(world).sync()
    before = await groups(world)
    world.fake.customer_groups["wrA1"]["name"] = "被改的名字"
    forged = await world.wecom.post(world.wecom.external_chat("wrA1", "dismiss"),
                                    aes_key="0000000000111111111122222222223333333333444")
    replayed = await world.wecom.post(world.wecom.external_chat("wrA1", "dismiss"),
                                      timestamp=int(world.fake.now()) - 3600)
    assert (forged.status_code, replayed.status_code) == (403, 403)
    # WeCom cannot be asked about the group now: 500, so WeCom delivers the event again.
    world.fake.fail("externalcontact/groupchat/get", status=502)
    assert (await event(world, "wrA1", "update", "change_name")).status_code == 500
    assert await groups(world) == before


async def test_a_name_pattern_binds_before_the_owner_rule(world: World) -> None:
    world.fake.add_customer_group("wrC3", "桂花园东区3号楼邻里群", ZHANG, members=12)
    assert await adapter(world).sync()
    found = await groups(world)
    assert (found["wrC3"].microgrid, found["wrC3"].bound_by) == ("M03", "name")
    assert found["wrA1"].bound_by == "owner"


async def test_without_the_permission_the_bot_runs_and_healthz_says_why(
        world: World) -> None:
    world.fake.customer_contact = False
    assert not await adapter(world).sync()
    assert world.runtime.http is not None
    async with httpx.AsyncClient() as client:
        answer = (await client.get(world.runtime.http.url + "/healthz")).json()
    status = answer["platforms"][PLATFORM] if "platforms" in answer else answer[PLATFORM]
    assert "48002" in status["error"]
    world.fake.customer_contact = True
    assert await adapter(world).sync()
    async with httpx.AsyncClient() as client:
        answer = (await client.get(world.runtime.http.url + "/healthz")).json()
    status = answer["platforms"][PLATFORM] if "platforms" in answer else answer[PLATFORM]
    assert (status["groups"], status["bound"], status["members"]) == (3, 3, 99)
    assert "error" not in status


def _cli(capsys: pytest.CaptureFixture[str], config: Path, *argv: str) -> tuple[int, str]:
    code = main([*argv, "--config", str(config)])
    out, err = capsys.readouterr()
    return code, out + err


async def test_groups_bind_and_unbind_by_hand_outlast_the_rules(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert await adapter(world).sync()
    config = world.db.parent / "gridbot.toml"
    code, out = await asyncio.to_thread(_cli, capsys, config, "groups")
    assert code == 0
    assert "wrA1" in out and "幸福里1号楼居民群" in out and "按群主" in out
    code, out = await asyncio.to_thread(_cli, capsys, config, "groups", "bind", "wrA2", "m04")
    assert code == 0 and "M04" in out, out
    code, out = await asyncio.to_thread(_cli, capsys, config, "groups", "unbind",
                                        "和平路居民群")
    assert code == 0 and "wrB1" in out, out
    code, out = await asyncio.to_thread(_cli, capsys, config, "groups", "bind", "wrA1", "M99")
    assert code == 1 and "M99" in out
    code, out = await asyncio.to_thread(_cli, capsys, config, "groups", "bind", "nope", "M01")
    assert code == 1 and "nope" in out
    assert await adapter(world).sync()  # the rules do not undo a hand's binding
    found = await groups(world)
    assert (found["wrA2"].microgrid, found["wrA2"].bound_by) == ("M04", "cli")
    assert (found["wrB1"].microgrid, found["wrB1"].bound_by) == (None, "cli")
    audit = world.rows("SELECT action, target FROM audit_log WHERE action LIKE '%customer%'")
    assert sorted(audit) == [("bind_customer_group", "wrA2"),
                             ("unbind_customer_group", "wrB1")]
    code, out = await asyncio.to_thread(_cli, capsys, config, "people")
    assert code == 0
    assert "M01" in out and "幸福里1号楼居民群（41 人，群主 zhangayi）" in out
    assert "未绑定：和平路居民群" in out


async def test_a_customer_group_cannot_be_posted_into(world: World) -> None:
    from gridbot.domain import Outgoing
    from gridbot.errors import PlatformError

    with pytest.raises(PlatformError) as refused:
        await adapter(world).send(Outgoing(platform=PLATFORM, chat_id="wrA1", text="hi"))
    assert refused.value.permanent
    assert not adapter(world).hears("wrA1")


def test_config_reads_customer_group_settings(tmp_path: Path) -> None:
    from datetime import timedelta

    from gridbot.config import load_config
    from gridbot.errors import ConfigError
    from tests.wechat_harness import write_config

    fake = FakeWeChat()
    config = load_config(write_config(tmp_path, fake, extra=GROUPS.replace(
        "owner_rule = true", 'owner_rule = true\nsync_every = "30m"')))
    groups = config.wecom.customer_groups if config.wecom else None
    assert groups is not None and groups.owner_rule and groups.enabled
    assert dict(groups.names) == {"M03": "^桂花园.*3号楼"}
    assert groups.sync_every == timedelta(minutes=30)
    for extra, said in ((GROUPS.replace('"^桂花园.*3号楼"', '"(unclosed"'), "names.M03"),
                        (GROUPS + 'M99 = "x"\n', "names.M99")):
        with pytest.raises(ConfigError) as refused, \
                contextlib.redirect_stderr(io.StringIO()):
            load_config(write_config(tmp_path, fake, extra=extra))
        assert said in str(refused.value)


@pytest.fixture
async def web_world(database: Path, wechat: FakeWeChat) -> AsyncIterator[World]:
    wechat.members.add(LI)
    wechat.add_customer_group("wrA1", "幸福里1号楼居民群", ZHANG, members=40)
    wechat.add_customer_group("wrB1", "和平路居民群", LI, members=31)
    w = await start_world(database.parent, wechat, "safe", web=True, extra=GROUPS)
    await w.link(ZHANG, "zhang")
    await w.link(LI, "li")
    assert await adapter(w).sync()
    yield w
    await w.runtime.stop()


async def _logged_in(w: World, person: str) -> httpx.AsyncClient:
    from gridbot.console.auth import issue_login

    console = w.runtime.console
    assert console is not None
    async with w.runtime.store.transaction() as tx:
        link, _ = await issue_login(tx, w.runtime.config, console.key, person,
                                    now=w.clock.now(), via="cli", base=console.base)
    client = httpx.AsyncClient(follow_redirects=False, timeout=10)
    token = link.rsplit("/", 1)[1]
    answer = await client.post(link.rsplit("/", 1)[0], data={"token": token})
    assert answer.status_code == 303, answer.text
    return client


async def test_the_people_page_lists_customer_groups_and_staff_bind_them(
        web_world: World) -> None:
    import re

    w = web_world
    console = w.runtime.console
    assert console is not None
    steward, staff = await _logged_in(w, "zhang"), await _logged_in(w, "zhou")
    try:
        mine = (await steward.get(console.base + "/people")).text
        assert 'data-customer-group="wrA1" data-microgrid="M01" data-members="41"' in mine
        assert "幸福里1号楼居民群" in mine and 'data-bind=' not in mine  # staff only
        page = (await staff.get(console.base + "/people")).text
        assert 'data-bind="wrA1"' in page and 'data-bind="wrB1"' in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        moved = await staff.post(console.base + "/people/group", data={
            "csrf": csrf[1], "chat": f"{PLATFORM}:wrA1", "microgrid": "M02"})
        assert moved.status_code == 303, moved.text
        after = (await staff.get(console.base + moved.headers["location"]
                                 .removeprefix(console.path))).text
        assert 'data-bound="wrA1"' in after
        assert 'data-customer-group="wrA1" data-microgrid="M02"' in after
        # M04 is not under her community; a steward may not bind; no CSRF, no change.
        away = await staff.post(console.base + "/people/group", data={
            "csrf": csrf[1], "chat": f"{PLATFORM}:wrB1", "microgrid": "M04"})
        own = re.search(r'name="csrf" value="([^"]+)"', mine)
        assert own is not None
        refused = await steward.post(console.base + "/people/group", data={
            "csrf": own[1], "chat": f"{PLATFORM}:wrB1", "microgrid": ""})
        forged = await staff.post(console.base + "/people/group", data={
            "chat": f"{PLATFORM}:wrB1", "microgrid": ""})
        assert (away.status_code, refused.status_code) == (403, 403)
        assert forged.status_code in (400, 403)
    finally:
        await steward.aclose()
        await staff.aclose()
    found = await groups(w)
    assert (found["wrA1"].microgrid, found["wrA1"].bound_by) == ("M02", "zhou")
    assert (found["wrB1"].microgrid, found["wrB1"].bound_by) == ("M02", "owner")
    assert w.rows("SELECT actor_id, via, action, target FROM audit_log "
                  "WHERE action LIKE '%customer%'") == [
        ("zhou", "web", "bind_customer_group", "wrA1")]
