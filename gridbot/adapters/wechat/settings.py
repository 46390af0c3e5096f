"""``[wechat…]``: what the WeChat adapters need (WeCom app, Official Account, group robots,
the WeCom smart bot), as the configuration file holds it. README "Running on WeChat" walks
through each value."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, WrapValidator

from gridbot.settings.environment import is_deferred
from gridbot.settings.fields import (
    Duration,
    NonEmpty,
    OptionalSecret,
    PlatformSection,
    Secret,
    Shape,
    Text,
    expect,
    keep_deferred,
    keep_deferred_secret,
    secret_value,
)
from gridbot.settings.issues import Issue

WECOM_API_BASE_URL = "https://qyapi.weixin.qq.com/cgi-bin/"
OAUTH_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"
ROBOT_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
APP_CHAT_ID = re.compile(r"[A-Za-z0-9]{1,32}")


def _aes_key(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise expect("nonempty")
    if not re.fullmatch(r"[A-Za-z0-9]{43}", value.strip()):
        raise expect("aes_key")
    return value.strip()


def _app_chat_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise expect("nonempty")
    if not APP_CHAT_ID.fullmatch(value.strip()):
        raise expect("app_chat_id")
    return value.strip()


def _nonempty(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise expect("nonempty")
    return value.strip()


def _name_pattern(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise expect("nonempty")
    try:
        re.compile(value)
    except re.error as exc:
        raise expect("name_pattern", detail=str(exc)) from None
    return value


AesKey = Annotated[SecretStr, BeforeValidator(_aes_key),
                   Shape("secret: the 43-character EncodingAESKey")]
AppChatId = Annotated[str, BeforeValidator(_app_chat_id), WrapValidator(keep_deferred),
                      Shape("app chat id: 1-32 of 0-9 a-z A-Z")]
NamePattern = Annotated[str, BeforeValidator(_name_pattern),
                        Shape("regular expression, searched in the group's name")]
RobotKey = Annotated[SecretStr, BeforeValidator(_nonempty), WrapValidator(keep_deferred_secret),
                     Shape("secret text")]


class CustomerGroupSettings(PlatformSection):
    """WeCom customer groups (客户群): the residents' groups the stewards own in WeCom,
    listed and bound to micro-grids (docs/zh/platforms.md, 客户群)."""

    enabled: bool = Field(True, strict=True,
                          description="false: leave customer groups alone, keeping the "
                                      "settings")
    secret: OptionalSecret = Field(
        SecretStr(""), description="客户联系 → API → Secret, best given as env:NAME; leave out "
                                   "to use the app's own secret (then add the app to 客户联系 "
                                   "→ 可调用接口的应用)")
    owner_rule: bool = Field(True, strict=True,
                             description="a group whose owner (群主) is a micro-grid's steward "
                                         "is bound to that micro-grid")
    names: dict[str, NamePattern] = Field(
        default_factory=dict,
        description="[wechat.work.customer_groups.names]: micro-grid code = a regular "
                    "expression; a group whose name it finds is bound to that micro-grid "
                    "(before the owner rule)")
    sync_every: Duration = Field(timedelta(hours=1),
                                 description="how often the whole list is read again; "
                                             "callbacks keep it current in between")
    confirm_within: Duration = Field(
        timedelta(hours=4),
        description="how long each owner has to confirm a notice's group-sending (客户联系 → "
                    "群发助手); reminded once at half of it, the task stopped at its end")
    check_every: Duration = Field(
        timedelta(minutes=5),
        description="how often a waiting group-sending's result is asked of WeCom")


class WeComSettings(PlatformSection):
    """A WeCom (企业微信) self-built app: stewards and staff. The callback URL to register
    is https://YOUR-HOST/wechat/work, proxied to [http]."""

    enabled: bool = Field(True, strict=True,
                          description="false: run without the WeCom app, keeping the settings")
    corp_id: NonEmpty = Field(description="我的企业 → 企业ID")
    agent_id: int = Field(ge=0, le=10**9, strict=True, description="the app's AgentId")
    secret: Secret = Field(description="the app's Secret; best given as env:NAME")
    token: Secret = Field(description="接收消息 → API接收: Token")
    encoding_aes_key: AesKey = Field(description="接收消息 → API接收: EncodingAESKey "
                                                 "(43 characters)")
    api_base_url: NonEmpty = Field(WECOM_API_BASE_URL,
                                   description="the WeCom API's address, or a private gateway")
    chats: dict[str, AppChatId] = Field(
        default_factory=dict,
        description="[wechat.work.chats]: micro-grid code = id of a WeCom app chat (群聊会话, "
                    "made with appchat/create); send only, notices go there")
    customer_groups: CustomerGroupSettings | None = Field(
        None, description="[wechat.work.customer_groups]: the stewards' customer groups "
                          "(客户群; see below)")


class SmartBotSettings(PlatformSection):
    """The WeCom smart bot (智能机器人) in API mode: stewards and staff @-mention it in
    internal WeCom groups, or talk to it in private. The callback URL to register is
    https://YOUR-HOST/wechat/smartbot, proxied to [http]."""

    enabled: bool = Field(True, strict=True,
                          description="false: run without the smart bot, keeping the settings")
    token: Secret = Field(description="the smart bot's API 模式 → Token")
    encoding_aes_key: AesKey = Field(description="the smart bot's API 模式 → EncodingAESKey "
                                                 "(43 characters)")
    name: Text = Field("", description="its name as people @-mention it (网格助手); empty: "
                                       "a leading @mention is taken for it")
    bot_id: Text = Field("", description="its Bot ID (aibotid); set: callbacks for another "
                                         "bot are ignored")
    api_base_url: NonEmpty = Field(WECOM_API_BASE_URL,
                                   description="where WeCom's response_url must point (its "
                                               "aibot/response), or a private gateway")


class OfficialAccountSettings(PlatformSection):
    """An Official Account (公众号): residents. The server URL to register is
    https://YOUR-HOST/wechat/mp."""

    enabled: bool = Field(True, strict=True, description="false: run without the Official "
                                                         "Account, keeping the settings")
    app_id: NonEmpty = Field(description="设置与开发 → 基本配置: AppID")
    secret: Secret = Field(description="AppSecret (put this server's IP on the IP allow-list "
                                       "there); best given as env:NAME")
    token: Secret = Field(description="服务器配置: Token")
    encoding_aes_key: AesKey = Field(
        SecretStr(""), description="set for 安全模式 / 兼容模式 (plain messages are then "
                                   "refused); leave out for 明文模式")
    api_base_url: NonEmpty = Field("https://api.weixin.qq.com/cgi-bin/",
                                   description="the Official Account API's address (web "
                                               "authorisation's code exchange uses the sns/ "
                                               "path beside its cgi-bin/)")
    web_auth: bool = Field(
        False, strict=True,
        description="true: a phone opening the residents' page inside WeChat is recognised "
                    "silently as its Official Account chat (网页授权, snsapi_base), so its "
                    "cases and their news are the same on the page and in the account. Only "
                    "for a verified service account (服务号) whose 网页授权域名 is the "
                    "residents' page's host: otherwise WeChat shows an error page instead of "
                    "the report page, so it is off until set")
    oauth_url: NonEmpty = Field(OAUTH_URL, description="WeChat's web authorisation page, "
                                                        "where web_auth sends the phone")


class WeChatSection(PlatformSection):
    """The WeChat platforms: ``[wechat.work]``, ``[wechat.mp]``, ``[wechat.robots]``,
    ``[wechat.smartbot]``."""

    robot_api_base_url: NonEmpty = Field(
        WECOM_API_BASE_URL, description="where the group robots' webhook/send lives; only "
                                        "if robots go through a gateway")
    work: WeComSettings | None = Field(None, description="the WeCom app (see below)")
    mp: OfficialAccountSettings | None = Field(None,
                                               description="the Official Account (see below)")
    smartbot: SmartBotSettings | None = Field(None, description="the WeCom smart bot (see "
                                                                "below)")
    robots: dict[str, RobotKey] = Field(
        default_factory=dict,
        description="[wechat.robots]: micro-grid code = its WeCom group robot (send only, 20 "
                    "a minute): the key= part of the webhook URL, or the whole URL")

    @property
    def robot_base(self) -> str:
        return self.robot_api_base_url.rstrip("/") + "/"

    def robot_keys(self) -> Iterator[Issue | tuple[str, str]]:
        """Each robot as (micro-grid, key), the key cut from a whole webhook URL pasted
        from WeCom; or the issue with it."""
        prefix = f"{self.robot_base}webhook/send?key="
        for microgrid, given in self.robots.items():
            text = secret_value(given)
            key = text if is_deferred(given) else text.removeprefix(prefix)
            if not is_deferred(given) and not ROBOT_KEY.fullmatch(key):
                yield Issue(("robots", microgrid), text, "robot_key", {"prefix": prefix},
                            secret=True)
            else:
                yield microgrid, key
