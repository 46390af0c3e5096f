"""Whatever people type, the engine answers clearly, never fails, never leaks.

Hypothesis plays random sequences of messages (commands with right and wrong arguments,
Chinese, English, emoji, HTML-looking text, control characters, wrong numbers) from
random people in groups and private chats through the real engine and SQLite file.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridbot.config import Config, load_config
from gridbot.demo import DEFAULT_START, Demo, parse_start
from gridbot.domain import ChatKind, Incoming, Outcome, Person
from tests.conftest import EXAMPLE_CONFIG

CONFIG: Config = load_config(EXAMPLE_CONFIG)
PEOPLE = list(CONFIG.people)
WORDS = ["报事", "进度", "撤销", "已解决", "未解决", "评价", "帮助", "认领", "进展", "办结", "转交",
         "上报", "我的", "值班", "下班", "超时", "认证", "绑定", "/report", "/status", "/cancel",
         "/confirm", "/reopen", "/rate", "/help", "/claim", "/note", "/done", "/transfer",
         "/escalate", "/mine", "/duty", "/overdue", "/link", "/bind", "/claim@GridBot", "/nope"]
ARGS = st.one_of(
    st.sampled_from(["1", "2", "#1", "＃２", "3 5", "1 5 很好", "1 ★★★", "99", "0", "-1",
                     "99999999999999", "abc", "1 李师傅", "2 zhang", "on", "off", "off 2h",
                     "M01", "M99", "ABCD-2345", "1 <b>还是坏的</b> & 没修", "1 😀👨‍👩‍👧",
                     "楼道灯坏了 <script>alert(1)</script>", "楼下冒烟了！", ""]),
    st.text(max_size=60),
)
MESSAGES = st.tuples(
    st.sampled_from(PEOPLE),
    st.booleans(),  # in private?
    st.one_of(st.builds(lambda w, a: f"{w} {a}", st.sampled_from(WORDS), ARGS),
              st.text(max_size=80)),
)
PRIVATE_DETAILS = [p.phone for p in CONFIG.people if p.phone] + \
    [p.address for p in CONFIG.people if p.address]


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(script=st.lists(MESSAGES, min_size=1, max_size=12))
async def test_random_conversations(
    tmp_path_factory: pytest.TempPathFactory, script: list[tuple[Person, bool, str]]
) -> None:
    path: Path = tmp_path_factory.mktemp("fuzz") / "gridbot.db"
    ids = itertools.count()
    async with Demo(CONFIG, path, parse_start(DEFAULT_START, CONFIG), out=io.StringIO()) as demo:
        await demo.say("刘奶奶", "报事 3幢楼道灯坏了")  # something to act on
        for person, private, text in script:
            home = person.unit if CONFIG.microgrid(person.unit) else "M01"
            chat = f"dm:{person.id}" if private else f"group:{home}"
            before = len(demo.console.delivered)
            message_id = f"f{next(ids)}"
            outcome = await demo.engine.handle(Incoming(
                platform="console", chat_id=chat,
                chat_kind=ChatKind.PRIVATE if private else ChatKind.GROUP,
                sender_id=person.id, sender_name=person.name, text=text,
                message_id=message_id))
            await demo.sender.drain()
            assert outcome not in (Outcome.FAILED, Outcome.SET_ASIDE), (person.name, text)
            sent = [d.message for d in demo.console.delivered[before:]]
            replies = [m for m in sent if m.reply_to == message_id]
            if outcome in (Outcome.HANDLED, Outcome.REFUSED):
                assert len(replies) == 1, (person.name, text, replies)
                assert replies[0].text.strip()
            else:
                assert outcome is Outcome.IGNORED and sent == [], (text, sent)
            for m in sent:
                if m.chat_id.startswith("group:"):
                    for detail in PRIVATE_DETAILS:
                        assert detail not in m.text, (text, m.text)
            # A redelivery changes nothing.
            again = await demo.engine.handle(Incoming(
                platform="console", chat_id=chat,
                chat_kind=ChatKind.PRIVATE if private else ChatKind.GROUP,
                sender_id=person.id, sender_name=person.name, text=text,
                message_id=message_id))
            assert again is Outcome.DUPLICATE
