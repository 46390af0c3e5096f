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

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from gridbot.adapters.wechat.official_account import PLATFORM, OfficialAccountAdapter
from gridbot.adapters.wechat.web_auth import MpWebAuth, in_wechat, sns_base
from gridbot.config import load_config
from gridbot.errors import PlatformError
from tests.fake_wechat import FakeWeChat
from tests.wechat_harness import CHEN, LIU, write_config

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
