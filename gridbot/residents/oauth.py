"""WeChat's web authorisation on the residents' page: a phone opening a link inside WeChat,
where the community's Official Account is configured, is sent (once, silently: the
snsapi_base scope asks the resident nothing) to WeChat, which sends it back with a code;
the code gives the resident's openid, and the phone becomes the person of that Official
Account chat (:func:`gridbot.residents.identity.adopt`). Their cases and case news are
then the same on the page and in the Official Account.

The return address ends with the page to come back to, and the ``state`` (which WeChat
carries back as is) signs that page for this phone's cookie: the return cannot be
pointed anywhere else, nor a return address with someone else's code be handed to
another phone to sign it in as them. A refusal or a failure of WeChat leaves the phone
an ordinary device, and back on the page it is not sent to WeChat again.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gridbot.errors import PlatformError
from gridbot.residents import identity
from gridbot.residents.app import RETURN, PlainRoute, Residents, state_ok

log = logging.getLogger(__name__)
#: the query parameter that keeps a page from sending the phone to WeChat
NO_AUTH = "noauth"


async def come_back(residents: Residents, request: Request) -> Response:
    """WeChat sends the phone back here with a code (or without, if refused)."""
    path = "/" + request.path_params["back"]
    device = identity.device_of(residents.key, request.cookies.get(identity.COOKIE))
    if device is None or not state_ok(residents.key, device, path,
                                      request.query_params.get("state", "")):
        return residents.problem("forged", locale=residents.locale_of(request), status=404)
    openid = await _identify(residents, request, device, path)
    if openid is None:
        # An ordinary device: back to the page, which must not send it to WeChat again
        # (a phone WeChat cannot identify would go round for ever).
        return RedirectResponse(f"{residents.path}{quote(path)}?{NO_AUTH}=1",
                                status_code=303)
    return RedirectResponse(residents.path + quote(path), status_code=303)


async def _identify(residents: Residents, request: Request, device: str,
                    path: str) -> str | None:
    """The openid the returned code stands for, made the phone's person; ``None`` if
    there is none (no code, a spent one, WeChat unreachable)."""
    code = request.query_params.get("code", "")
    auth = residents.web_auth
    parts = path.split("/")
    microgrid = parts[1] if len(parts) > 2 else ""
    if not code or auth is None or len(code) > 200 \
            or microgrid not in residents.microgrids:
        return None
    try:
        openid = await auth.identify(code)
    except PlatformError as exc:
        log.warning("residents: WeChat could not tell who opened the page: %s", exc)
        return None
    if not openid:
        return None
    async with residents.store.transaction() as tx:
        resident = await identity.find(tx, residents.key, device)
        await identity.adopt(tx, resident, auth.platform, openid, microgrid=microgrid,
                             now=residents.console.now())
    return openid


ROUTES: list[PlainRoute] = [(RETURN + "/{back:path}", come_back, ("GET",))]
