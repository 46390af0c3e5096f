"""The Official Account's web authorisation (网页授权, snsapi_base): which follower of the
account opened the residents' page inside WeChat, asked of WeChat without asking the
resident anything, so the page and the account's chat are one person
(:mod:`gridbot.residents.oauth` does the rest).

The phone goes to WeChat's authorisation page with the account's AppID and a return
address; WeChat sends it back there with a one-time code (valid five minutes), and the
code, exchanged with the AppSecret at ``sns/oauth2/access_token``, gives the openid.
wechatpy's :class:`~wechatpy.oauth.WeChatOAuth` makes the exchange, pointed at the
``sns/`` path beside ``[wechat.mp] api_base_url``'s ``cgi-bin/`` and given a timeout.
No wechatpy type leaves this module.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlencode, urljoin

from wechatpy.exceptions import WeChatClientException
from wechatpy.oauth import WeChatOAuth

from gridbot.adapters.wechat.settings import OfficialAccountSettings
from gridbot.adapters.wechat.shared import call, describe, is_api_error, timeout_session
from gridbot.errors import PlatformError

log = logging.getLogger(__name__)

#: a code WeChat does not know (40029: invalid, or expired) or has given already
#: (40163: code been used): nobody is identified, and asking again cannot help
SPENT_CODES = frozenset({40029, 40163})
#: the scope that asks the resident nothing and gives only the openid
SCOPE = "snsapi_base"


def sns_base(api_base_url: str) -> str:
    """Where ``sns/…`` lives: beside the ``cgi-bin/`` of ``api_base_url``."""
    base = api_base_url if api_base_url.endswith("/") else api_base_url + "/"
    return urljoin(base, "../")


def in_wechat(user_agent: str) -> bool:
    """WeChat's own browser, which web authorisation works in. WeCom's browser also says
    MicroMessenger, but cannot authorise for an Official Account (it shows an error)."""
    return "MicroMessenger" in user_agent and "wxwork" not in user_agent.lower()


class MpWebAuth:
    """:class:`gridbot.adapters.base.WebAuth` for one Official Account."""

    def __init__(self, settings: OfficialAccountSettings, platform: str) -> None:
        self.platform = platform
        self.settings = settings
        self.base = sns_base(settings.api_base_url)
        self._http = timeout_session()

    def wanted(self, user_agent: str) -> bool:
        return in_wechat(user_agent)

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """WeChat's documented shape, its parameters in its documented order."""
        query = urlencode({"appid": self.settings.app_id, "redirect_uri": redirect_uri,
                           "response_type": "code", "scope": SCOPE, "state": state},
                          quote_via=quote)
        return f"{self.settings.oauth_url}?{query}#wechat_redirect"

    async def identify(self, code: str) -> str | None:
        oauth = WeChatOAuth(self.settings.app_id, self.settings.secret.get_secret_value(),
                            redirect_uri="", scope=SCOPE)
        oauth.API_BASE_URL = self.base
        oauth._http = self._http
        try:
            answer = await call(oauth.fetch_access_token, code)
        except WeChatClientException as exc:
            if exc.errcode in SPENT_CODES:
                log.info("web authorisation: WeChat refused the code (%s)", describe(exc))
                return None
            raise PlatformError(f"web authorisation at {self.base}: {describe(exc)}") from None
        except (KeyError, ValueError) as exc:  # an answer that is not WeChat's shape
            raise PlatformError(f"web authorisation at {self.base}: an unreadable answer "
                                f"({type(exc).__name__})") from None
        except Exception as exc:
            if not is_api_error(exc):
                raise
            raise PlatformError(f"web authorisation at {self.base}: {describe(exc)}") from None
        openid = answer.get("openid") if isinstance(answer, dict) else None
        return openid if isinstance(openid, str) and openid else None

    def close(self) -> None:
        self._http.close()
