"""What ``gridbot doctor`` found, one check at a time: named, fine or not, with the
figures its line shows. Adapters report theirs in this shape too
(:meth:`gridbot.adapters.base.Adapter.diagnose`), so no platform type leaves them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

#: how far a platform's clock may be from this machine's: WeChat refuses callbacks whose
#: timestamp is more than five minutes off
CLOCK_SKEW_MAX = 300.0


@dataclass(frozen=True, kw_only=True)
class Finding:
    #: the check, which names its line in ``templates/*/cli.j2`` (``doctor_line``)
    check: str
    ok: bool
    params: Mapping[str, Any] = field(default_factory=dict)


def clock_finding(platform: str, date_header: str | None, now: datetime) -> Finding | None:
    """Compare this machine's clock with a platform's HTTP ``Date`` header."""
    if not date_header:
        return None
    try:
        theirs = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    skew = (now - theirs).total_seconds()
    return Finding(check="clock", ok=abs(skew) <= CLOCK_SKEW_MAX,
                   params={"platform": platform, "skew": round(skew)})
