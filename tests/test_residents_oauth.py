"""The Official Account path of the residents' pages: WeChat's web authorisation
(snsapi_base) against the local fake WeChat.

A phone opening a micro-grid's link inside WeChat goes (silently) to WeChat's
authorisation page, comes back with a one-time code, and the code gives its openid: the
page and the Official Account chat are then one person, and the news of a case reported
on the page arrives as an Official Account message too. Nothing of gridbot's or
wechatpy's is mocked; the runtime is ``gridbot run``'s, with the console and the
residents' pages served.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from gridbot.adapters.wechat.official_account import PLATFORM, OfficialAccountAdapter
from gridbot.adapters.wechat.web_auth import MpWebAuth, in_wechat, sns_base
from gridbot.config import load_config
from gridbot.errors import PlatformError
from gridbot.residents import identity
from gridbot.residents.app import Residents
from tests.fake_wechat import FakeWeChat, Sent
from tests.wechat_harness import CHEN, LIU, ZHANG, World, start_world, write_config

#: WeChat's browser on an iPhone, on Android, and WeCom's (which says MicroMessenger too)
IPHONE_WECHAT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003137) "
                 "NetType/WIFI Language/zh_CN")
ANDROID_WECHAT = ("Mozilla/5.0 (Linux; Android 14; V2307A Build/UP1A.231005.007; wv) "
                  "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/122.0.6261.120 "
                  "Mobile Safari/537.36 XWEB/1220099 MMWEBSDK/20240404 MMWEBID/1234 "
                  "MicroMessenger/8.0.49.2600(0x28003133) WeChat/arm64 Weixin NetType/5G "
                  "Language/zh_CN ABI/arm64")
WECOM = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Mobile/15E148 wxwork/4.1.26 MicroMessenger/7.0.1 "
         "Language/zh ColorScheme/Light")
SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
WEB_AUTH = "web_auth = true\noauth_url = \"{url}\""


def web_auth_of(tmp_path: Path, fake: FakeWeChat, extra: str = "") -> MpWebAuth:
    config = load_config(write_config(tmp_path, fake, mp_extra=extra or WEB_AUTH.format(
        url=fake.oauth_url)))
    assert config.official_account is not None
    auth = OfficialAccountAdapter(config.official_account).web_auth()
    assert isinstance(auth, MpWebAuth)
    return auth


async def code_for(fake: FakeWeChat, auth: MpWebAuth, openid: str,
                   back: str = "https://gridbot.example.org/r/oauth") -> str:
    """The phone of ``openid`` at WeChat's authorisation page: the code it comes back with."""
    fake.web_user = openid
    async with httpx.AsyncClient() as client:
        answer = await client.get(auth.authorize_url(back, "state-1"))
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == back
    query = dict(parse_qsl(location.query))
    assert query["state"] == "state-1"
    return query["code"]


# -- the adapter's part ----------------------------------------------------------------------
def test_web_authorisation_is_off_unless_the_account_says_so(tmp_path: Path,
                                                             wechat: FakeWeChat) -> None:
    config = load_config(write_config(tmp_path, wechat))
    mp = config.official_account
    assert mp is not None and mp.web_auth is False
    assert mp.oauth_url == "https://open.weixin.qq.com/connect/oauth2/authorize"
    assert OfficialAccountAdapter(mp).web_auth() is None


def test_only_wechats_own_browser_is_sent_to_wechat() -> None:
    assert in_wechat(IPHONE_WECHAT) and in_wechat(ANDROID_WECHAT)
    assert not in_wechat(WECOM)  # WeCom's browser cannot authorise for an Official Account
    assert not in_wechat(SAFARI) and not in_wechat("")


def test_the_code_exchange_lives_beside_cgi_bin() -> None:
    assert sns_base("https://api.weixin.qq.com/cgi-bin/") == "https://api.weixin.qq.com/"
    assert sns_base("https://api.weixin.qq.com/cgi-bin") == "https://api.weixin.qq.com/"
    assert sns_base("http://gw.example.org/wx/cgi-bin/") == "http://gw.example.org/wx/"


def test_the_authorisation_url_has_wechats_documented_shape(tmp_path: Path,
                                                            wechat: FakeWeChat) -> None:
    auth = web_auth_of(tmp_path, wechat, "web_auth = true")
    assert auth.platform == PLATFORM == "wechat_mp"
    url = auth.authorize_url("https://gridbot.example.org/r/oauth", "0123abcd/M01/1.ab")
    address, _, fragment = url.partition("#")
    assert fragment == "wechat_redirect"
    base, _, query = address.partition("?")
    assert base == "https://open.weixin.qq.com/connect/oauth2/authorize"
    assert parse_qsl(query) == [  # WeChat wants them in this order
        ("appid", wechat.app_id), ("redirect_uri", "https://gridbot.example.org/r/oauth"),
        ("response_type", "code"), ("scope", "snsapi_base"), ("state", "0123abcd/M01/1.ab")]
    assert "redirect_uri=https%3A%2F%2Fgridbot.example.org%2Fr%2Foauth&" in query


async def test_a_code_gives_its_openid_once(tmp_path: Path, wechat: FakeWeChat) -> None:
    auth = web_auth_of(tmp_path, wechat)
    try:
        code = await code_for(wechat, auth, LIU)
        assert await auth.identify(code) == LIU
        assert await auth.identify(code) is None  # 40163: spent
        assert await auth.identify("never-given") is None  # 40029
        assert ("sns/oauth2/access_token", 40163) in wechat.refused
        assert ("sns/oauth2/access_token", 40029) in wechat.refused
        [(_, first), *_] = [c for c in wechat.calls if c[0] == "sns/oauth2/access_token"]
        assert first["grant_type"] == "authorization_code" and first["appid"] == wechat.app_id
        assert await auth.identify(await code_for(wechat, auth, CHEN)) == CHEN
    finally:
        auth.close()


async def test_wechat_that_cannot_be_asked_is_a_platform_error(tmp_path: Path,
                                                               wechat: FakeWeChat) -> None:
    auth = web_auth_of(tmp_path, wechat)
    try:
        code = await code_for(wechat, auth, LIU)
        wechat.fail("sns/oauth2/access_token", status=502)
        with pytest.raises(PlatformError, match="HTTP 502"):
            await auth.identify(code)
        wechat.fail("sns/oauth2/access_token", errcode=-1)  # system busy
        with pytest.raises(PlatformError, match="errcode -1"):
            await auth.identify(code)
        assert await auth.identify(code) == LIU  # the code was not spent by the failures
    finally:
        auth.close()
    wrong = web_auth_of(tmp_path, wechat, WEB_AUTH.format(url=wechat.oauth_url))
    wrong.settings = wrong.settings.model_copy(update={"app_id": "wx-not-the-account"})
    try:
        with pytest.raises(PlatformError, match="errcode 40013") as refused:
            await wrong.identify(await code_for(wechat, auth, LIU))
        assert wechat.mp_secret not in str(refused.value)
    finally:
        wrong.close()
    await wechat.stop()  # WeChat unreachable
    gone = web_auth_of(tmp_path, wechat)
    try:
        with pytest.raises(PlatformError, match="unreachable"):
            await gone.identify("any-code")
    finally:
        gone.close()


# -- the whole path, on gridbot run's runtime ------------------------------------------------
@pytest.fixture
async def world(database: Path, wechat: FakeWeChat) -> AsyncIterator[World]:
    """The runtime with the residents' pages and the Official Account's web authorisation
    pointed at the fake WeChat; 张阿姨 (M01's steward) linked in the WeCom app."""
    w = await start_world(database.parent, wechat, "safe", web=True,
                          mp_extra=WEB_AUTH.format(url=wechat.oauth_url))
    await w.link(ZHANG, "zhang")
    yield w
    await w.runtime.stop()


def residents_of(w: World) -> Residents:
    residents = w.runtime.console.residents if w.runtime.console else None
    assert residents is not None and residents.web_auth is not None
    return residents


async def link_of(w: World, microgrid: str = "M01") -> str:
    async with w.runtime.store.transaction() as tx:
        return await residents_of(w).link_url(tx, microgrid)


async def person_of(w: World, phone: httpx.AsyncClient) -> str | None:
    """Whom the residents' page takes this phone for."""
    residents = residents_of(w)
    device = identity.device_of(residents.key, phone.cookies.get(identity.COOKIE))
    assert device is not None
    async with w.runtime.store.transaction() as tx:
        found = await identity.find(tx, residents.key, device)
    return found.person.id if found.person else None


def phone(user_agent: str = IPHONE_WECHAT, *, follow: bool = True) -> httpx.AsyncClient:
    return httpx.AsyncClient(follow_redirects=follow, timeout=10,
                             headers={"user-agent": user_agent})


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


async def report(w: World, her: httpx.AsyncClient, link: str, page: httpx.Response,
                 text: str) -> tuple[httpx.Response, list[Sent]]:
    """She reports through the page: its case page, and what WeChat delivered."""
    before = len(w.fake.sent)
    done = await her.post(link, data={"csrf": csrf_of(page.text), "text": text,
                                      "building": "", "place": "3幢2单元", "name": "",
                                      "phone": ""})
    assert done.status_code == 200 and "/case/" in str(done.url), done.text[:500]
    return done, await w.settled(before)


async def test_the_page_in_wechat_is_the_official_account_chat(world: World) -> None:
    w = world
    reply, _ = await w.mp_said(LIU, f"认证 {await w.code('liu_nainai')}")  # her OA chat
    assert reply.text is not None and "刘奶奶" in reply.text
    link = await link_of(w)
    w.fake.web_user = LIU  # her phone, in WeChat
    async with phone() as her:
        page = await her.get(link)
        assert page.status_code == 200 and 'name="csrf"' in page.text, page.text[:500]
        # Sent to WeChat's authorisation page, back with a code, back to the link.
        went = [str(r.url) for r in page.history]
        assert went[0] == link and went[1].startswith(w.fake.oauth_url + "?appid=")
        assert "scope=snsapi_base" in went[1]
        assert went[2].startswith(link.replace("/r/", "/r/oauth/") + "?code=")
        # (a browser keeps #wechat_redirect through redirects without a fragment of their own)
        assert str(page.url).removesuffix("#wechat_redirect") == link
        assert w.fake.called("sns/oauth2/access_token") == 1
        assert await person_of(w, her) == "liu_nainai"

        case_page, sent = await report(w, her, link, page, "楼道灯坏了，晚上很黑")
        assert "#1" in case_page.text
        case, _ = await w.case(1)
        assert case.reporter_id == "liu_nainai" and case.origin_platform == "web"
        assert any("#1" in s.text and "楼道灯" in s.text for s in sent if s.to == ZHANG)
        assert await her.get(link) and w.fake.called("connect/oauth2/authorize") == 1

    # The steward works it in chat; its news reaches her as Official Account messages.
    claimed = await w.said(ZHANG, "认领 1")
    [news] = [s for s in claimed if s.to == LIU]
    assert news.api == "message/custom/send" and "#1" in news.text and "认领" in news.text
    resolved = await w.said(ZHANG, "办结 1 已换灯泡")
    [news] = [s for s in resolved if s.to == LIU]
    assert news.api == "message/custom/send" and "已换灯泡" in news.text
    # … and in the account she may answer it, as her own case.
    rated, _ = await w.mp_said(LIU, "评价 1 5 很快")
    assert rated.text is not None and "#1" in rated.text
    case, _ = await w.case(1)
    assert case.rating == 5 and case.status.value == "closed"


async def test_a_follower_the_bot_never_linked_is_one_person_too(world: World) -> None:
    w = world
    hint, _ = await w.mp_said(CHEN, "你好")  # she follows the account, nothing more
    assert hint.text is not None
    link = await link_of(w)
    w.fake.web_user = CHEN
    async with phone(ANDROID_WECHAT) as her:
        page = await her.get(link)
        person = await person_of(w, her)
        assert person == f"~wechat_mp:{CHEN}", person
        await report(w, her, link, page, "5幢门口垃圾没人收")
    case, _ = await w.case(1)
    assert case.reporter_id == person
    progress, _ = await w.mp_said(CHEN, "进度")  # the account knows the page's case
    assert progress.text is not None and "#1" in progress.text and "垃圾" in progress.text
    claimed = await w.said(ZHANG, "认领 1")
    assert [s.api for s in claimed if s.to == CHEN] == ["message/custom/send"]


async def test_other_browsers_are_not_sent_to_wechat(world: World) -> None:
    w = world
    link = await link_of(w)
    w.fake.web_user = LIU
    for agent in (SAFARI, WECOM):
        async with phone(agent, follow=False) as it:
            page = await it.get(link)
            assert page.status_code == 200 and 'name="csrf"' in page.text
            assert await person_of(w, it) is None
    assert w.fake.called("connect/oauth2/authorize") == 0


async def test_a_spent_code_or_a_return_made_for_another_phone_identifies_nobody(
        world: World) -> None:
    w = world
    link = await link_of(w)
    w.fake.web_user = LIU
    async with phone(follow=False) as hers, phone(follow=False) as other:
        asked = await hers.get(link)  # a new phone: sent to WeChat, given its cookie
        assert asked.status_code == 302, asked.text
        assert asked.headers["location"].startswith(w.fake.oauth_url + "?")
        async with httpx.AsyncClient() as at_wechat:
            comeback = httpx.URL((await at_wechat.get(asked.headers["location"]))
                                 .headers["location"])
        assert comeback.path == "/r/oauth" + urlsplit(link).path.removeprefix("/r")
        query = dict(parse_qsl(comeback.query.decode()))
        assert re.fullmatch(r"[0-9a-f]{32}", query["state"])  # what WeChat documents

        # Her return address handed to another phone (to sign it in as her): refused,
        # and her code is not even exchanged.
        await other.get(link + "?noauth=1")
        refused = await other.get(str(comeback))
        assert refused.status_code == 404 and "location" not in refused.headers
        assert await person_of(w, other) is None
        assert w.fake.called("sns/oauth2/access_token") == 0
        # Her return address edited to another page, or off the site: refused.
        for path in (f"/r/oauth/M02/{urlsplit(link).path.split('/')[-1]}",
                     "/r/oauth//evil.example", "/r/oauth/"):
            edited = await hers.get(str(comeback.copy_with(path=path)))
            assert edited.status_code == 404, path
        forged = await hers.get(str(comeback.copy_with(query=urlencode(
            {"code": query["code"], "state": "0" * 32}).encode())))
        assert forged.status_code == 404

        # The code spent already (someone got to it first): an ordinary device, and the
        # page is not sent to WeChat again.
        auth = residents_of(w).web_auth
        assert auth is not None and await auth.identify(query["code"]) == LIU
        again = await hers.get(str(comeback))
        assert again.status_code == 303 and again.headers["location"] == (
            urlsplit(link).path + "?noauth=1")
        assert ("sns/oauth2/access_token", 40163) in w.fake.refused
        page = await hers.get(link + "?noauth=1")
        assert page.status_code == 200 and 'name="csrf"' in page.text
        assert await person_of(w, hers) is None

    w.fake.fail("sns/oauth2/access_token", status=502)  # WeChat down: the page still opens
    async with phone() as third:
        page = await third.get(link)
        assert page.status_code == 200 and page.url.query == b"noauth=1"
        assert await person_of(w, third) is None
