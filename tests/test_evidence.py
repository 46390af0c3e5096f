"""Evidence (photos, voice notes, files) on the engine and the console adapter.

A report's evidence is kept on the case and goes to each new holder with the claim
notice; a resolution's goes to the reporter. References only make sense on their own
platform: a reader on another one gets a line saying what is attached there instead.
(Telegram's side, sending by file id, is in ``tests/test_telegram.py``.)
"""

from __future__ import annotations

import io

from gridbot.cases import evidence
from gridbot.domain import Attachment, AttachmentKind, CaseEvent, ChatKind, Incoming, Outcome
from tests.conftest import Bot

PHOTO = Attachment(kind=AttachmentKind.PHOTO, platform="console", ref="photo-0001.jpg")
VOICE = Attachment(kind=AttachmentKind.VOICE, platform="console", ref="voice-0001.ogg")
FIXED = Attachment(kind=AttachmentKind.PHOTO, platform="console", ref="photo-0002.jpg")


def said(text: str, *, by: str = "liu_nainai", name: str = "刘奶奶", private: bool = False,
         attachments: tuple[Attachment, ...] = (), n: int = 1) -> Incoming:
    return Incoming(platform="console", chat_id=f"dm:{by}" if private else "group:M01",
                    chat_kind=ChatKind.PRIVATE if private else ChatKind.GROUP, sender_id=by,
                    sender_name=name, text=text, message_id=f"ev-{n}", attachments=attachments,
                    chat_title="" if private else "幸福里1-3幢")


async def test_report_evidence_goes_to_each_new_holder_once(bot: Bot) -> None:
    shown = io.StringIO()
    bot.demo.console.out = shown
    outcome, out = await bot.handle(said("报事 楼道灯坏了，见照片和语音",
                                         attachments=(PHOTO, VOICE)))
    assert outcome is Outcome.HANDLED
    group = [m for m in out if m.chat_id == "group:M01"]
    steward = [m for m in out if m.chat_id == "dm:zhang"]
    assert group[0].attachments == ()  # the group's acknowledgement carries none
    assert steward[0].attachments == (PHOTO, VOICE)
    assert [b.command for b in steward[0].buttons] == ["/claim 1"]
    assert "📎 photo: photo-0001.jpg" in shown.getvalue()
    assert "📎 voice: voice-0001.ogg" in shown.getvalue()
    events = await bot.events(1)
    assert events[0].data["attachments"] == [PHOTO.as_data(), VOICE.as_data()]

    # handed on: the new holder gets the evidence too ...
    _, out = await bot.handle(said("转交 1 孙志愿", by="zhang", name="张阿姨", private=True,
                                   n=2))
    assert [m.attachments for m in out if m.chat_id == "dm:sun"] == [(PHOTO, VOICE)]
    # ... and someone who held the case before does not get it again
    _, out = await bot.handle(said("转交 1 张阿姨", by="sun", name="孙志愿", private=True,
                                   n=3))
    back = [m for m in out if m.chat_id == "dm:zhang"]
    assert back and back[0].attachments == ()


async def test_resolution_evidence_goes_to_the_reporter(bot: Bot) -> None:
    await bot.say("刘奶奶", "报事 楼道灯坏了")
    _, out = await bot.handle(said("办结 1 灯已换好，见照片", by="zhang", name="张阿姨",
                                   private=True, attachments=(FIXED,), n=2))
    reporter = [m for m in out if m.chat_id == "dm:liu_nainai"]
    assert len(reporter) == 1 and "灯已换好" in reporter[0].text
    assert reporter[0].attachments == (FIXED,)
    assert reporter[0].buttons  # still asked to confirm and rate
    assert [m.attachments for m in out if m.chat_id == "dm:zhang"] == [()]
    resolved = [e for e in await bot.events(1) if e.kind == "resolved"]
    assert resolved[0].data["attachments"] == [FIXED.as_data()]


async def test_evidence_from_another_platform_is_mentioned_not_sent(bot: Bot) -> None:
    elsewhere = (Attachment(kind=AttachmentKind.PHOTO, platform="telegram", ref="photo:AgAC1"),
                 Attachment(kind=AttachmentKind.PHOTO, platform="telegram", ref="photo:AgAC2"),
                 Attachment(kind=AttachmentKind.VOICE, platform="telegram", ref="voice:AwAD3"))
    _, out = await bot.handle(said("报事 消防通道被堵了", attachments=elsewhere))
    steward = [m for m in out if m.chat_id == "dm:zhang"]
    assert steward[0].attachments == ()
    assert steward[0].text.splitlines()[-1] == (
        "（另在 Telegram 上附有2张照片、1条语音，这里无法显示）")
    assert "Telegram" not in next(m.text for m in out if m.chat_id == "group:M01")


def test_evidence_reads_early_string_references() -> None:
    """Reports stored before evidence named its platform kept ``"kind:file id"`` strings."""
    from datetime import UTC, datetime

    at = datetime(2026, 11, 23, tzinfo=UTC)
    events = [CaseEvent(case_number=1, at=at, actor_id="liu", kind="reported",
                        data={"attachments": ["photo:AgAC1", "audio:CQAD2", "video:BAAD3", 7]}),
              CaseEvent(case_number=1, at=at, actor_id="zhang", kind="resolved",
                        data={"attachments": [FIXED.as_data()]})]
    assert evidence(events, "reported", "telegram") == (
        Attachment(kind=AttachmentKind.PHOTO, platform="telegram", ref="photo:AgAC1"),
        Attachment(kind=AttachmentKind.VOICE, platform="telegram", ref="audio:CQAD2"),
        Attachment(kind=AttachmentKind.DOCUMENT, platform="telegram", ref="video:BAAD3"))
    assert evidence(events, "resolved", "telegram") == (FIXED,)
