"""WeCom group robots (群机器人): send-only webhooks that post into one group each.

A robot is added to a WeCom group by hand and gives a webhook URL with a key; the
configuration names one per micro-grid (``[wechat.robots]``). Nobody can talk to a
robot, so there is nothing to receive and nobody says ``/bind`` in its group: at start
each configured robot becomes a group chat of platform ``wecom_robot`` whose chat id is
the micro-grid code, bound to that micro-grid (a robot taken out of the configuration
loses its binding). Whatever the engine addresses to the micro-grid's groups (notices,
answers and news for a group) then reaches the robot's group too.

Messages go out as ``text`` (plain: what residents typed arrives as typed, with no
markdown to break), at most 20 a minute per robot as WeCom allows, in parts of at
most 2,048 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from gridbot.adapters.base import Adapter, Intake
from gridbot.adapters.wechat.shared import (
    Parts,
    RobotClient,
    call,
    is_api_error,
    own_images,
    platform_error,
    split_text,
)
from gridbot.domain import Attachment, Outgoing, TextFormat
from gridbot.errors import PlatformError
from gridbot.ratelimit import WECOM_ROBOT_LIMITS

log = logging.getLogger(__name__)

PLATFORM = "wecom_robot"
WHO = "WeCom robot"
#: the largest picture a robot takes, in bytes (before base64)
ROBOT_IMAGE_MAX = 2 * 1024 * 1024


class WeComRobotAdapter(Adapter):
    name = PLATFORM
    fmt = TextFormat.PLAIN
    limits = WECOM_ROBOT_LIMITS

    def __init__(self, robots: Mapping[str, str], *, api_base_url: str) -> None:
        """``robots``: micro-grid code → the robot's webhook key."""
        self.robots = dict(robots)
        self.client = RobotClient(api_base_url=api_base_url)
        self._parts = Parts()
        self.sent = 0

    async def start(self, intake: Intake) -> None:
        await intake.bind_groups(PLATFORM, {code: code for code in self.robots})
        log.info("WeCom group robots for %s", ", ".join(sorted(self.robots)) or "nobody")

    async def close(self) -> None:
        self.client._http.close()

    def hears(self, chat_id: str) -> bool:
        return False  # nobody can talk to a robot

    def health(self) -> dict[str, Any]:
        return {"mode": "webhook", "robots": len(self.robots), "sent": self.sent}

    async def send(self, message: Outgoing) -> str:
        key = self.robots.get(message.chat_id)
        if key is None:
            raise PlatformError(f"{WHO}: no robot is configured for {message.chat_id} any more",
                                permanent=True)

        async def one(part: str | Attachment) -> str:
            body = ({"msgtype": "text", "text": {"content": part}} if isinstance(part, str)
                    else _image(part))
            try:
                await call(self.client.send, key, body)
            except Exception as exc:
                if is_api_error(exc):
                    raise platform_error(exc, WHO) from None
                raise
            self.sent += 1
            return ""  # a robot's message has no id

        parts: list[str | Attachment] = [*split_text(message.text), *own_images(message, WHO)]
        return await self._parts.send(message, parts, one)


def _image(picture: Attachment) -> dict[str, Any]:
    """A robot takes a picture inline (at most 2 MB), with its MD5 to check it by."""
    data = picture.content() or b""
    if len(data) > ROBOT_IMAGE_MAX:
        raise PlatformError(f"{WHO}: picture {picture.name} is over 2 MB", permanent=True)
    return {"msgtype": "image", "image": {"base64": base64.b64encode(data).decode("ascii"),
                                          "md5": hashlib.md5(data).hexdigest()}}
