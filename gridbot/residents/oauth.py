"""WeChat's web authorisation on the residents' page: a phone opening a link inside WeChat,
where the community's Official Account is configured, is sent (once, silently: the
snsapi_base scope asks the resident nothing) to WeChat, which sends it back with a code;
the code gives the resident's openid, and the phone becomes the person of that Official
Account chat (:func:`gridbot.residents.identity.adopt`). Their cases and case news are
then the same on the page and in the Official Account.

The ``state`` carries the page to come back to, signed, so the return cannot be pointed
anywhere else; a refusal or a failure of WeChat leaves the phone an ordinary device.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gridbot.errors import PlatformError
from gridbot.residents import identity
from gridbot.residents.app import RETURN, PlainRoute, Residents, path_of

log = logging.getLogger(__name__)

async def come_back(residents: Residents, request: Request) -> Response:
    """WeChat sends the phone back here with a code (or without, if refused)."""
    path = path_of(residents.key, request.query_params.get("state", ""))
    if path is None:
        return residents.problem("forged", locale=residents.locale_of(request), status=404)
    back = RedirectResponse(residents.path + path, status_code=303)
    device = identity.device_of(residents.key, request.cookies.get(identity.COOKIE))
    code = request.query_params.get("code", "")
    auth = residents.web_auth
    parts = path.split("/")
    microgrid = unquote(parts[1]) if len(parts) > 2 else ""
    if device is None or not code or auth is None or len(code) > 200 \
            or microgrid not in residents.microgrids:
        return back  # an ordinary device from here on
    try:
        openid = await auth.identify(code)
    except PlatformError as exc:
        log.warning("residents: WeChat could not tell who opened the page: %s", exc)
        return back
    if not openid:
        return back
    now = residents.console.now()
    async with residents.store.transaction() as tx:
        resident = await identity.find(tx, residents.key, device)
        await identity.adopt(tx, resident, auth.platform, openid, microgrid=microgrid,
                             now=now)
    return back


ROUTES: list[PlainRoute] = [(RETURN, come_back, ("GET",))]
