"""The renderer and every message template, in both locales and both text formats."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from gridbot import stats
from gridbot.commands import CONTROL, Suggestion
from gridbot.config import LOCALES, load_config
from gridbot.domain import (
    Case,
    CaseEvent,
    Community,
    Delivery,
    DeliveryCounts,
    DeliveryStatus,
    Errand,
    GroupTaskStatus,
    Notice,
    NoticeStatus,
    Patrol,
    Person,
    Priority,
    Role,
    ShiftSwap,
    Status,
    SwapStatus,
    TextFormat,
)
from gridbot.group_tasks import OwnerLine
from gridbot.handlers import REGISTRY
from gridbot.handlers.account import help_sections
from gridbot.notices import PageLink
from gridbot.render import DEFAULT_TEMPLATES, Renderer
from gridbot.store.base import ReportOffer
from gridbot.worklog import ErrandRow, Work
from gridbot.worklog import Ratio as WorkRatio

ROOT = Path(__file__).resolve().parent.parent
CONFIG = load_config(ROOT / "config.example.toml")
TZ = ZoneInfo("Asia/Shanghai")
RENDERER = Renderer(TZ, "zh-CN")
FORMATS = (TextFormat.PLAIN, TextFormat.HTML)
#: templates that are not messages: shared macros, and the command line's text
NOT_MESSAGES = {"_names", "cli", "_days", "_errand"}

GROUP = "group:M01"  # where make_case's cases were reported
NOW = datetime(2024, 5, 6, 1, 30, tzinfo=UTC)  # 09:30 in Suzhou
UNITS = {"M01": "幸福里一号微网格", "G01": "幸福里网格", "C01": "幸福里社区", "SD": "示范街道"}

EVIL = "<b>bold</b> & <script>"
EVIL_HTML = "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;"
#: short enough for the list templates, which cut texts to 20 or 30 characters
EVIL_SHORT = "<b>x</b> & y"
EVIL_SHORT_HTML = "&lt;b&gt;x&lt;/b&gt; &amp; y"

RESIDENT = Person(id="liu", name="刘奶奶", role=Role.RESIDENT, unit="M01", phone="13800000001",
                  address="3幢 101")
STEWARD = Person(id="zhang", name="张阿姨", role=Role.STEWARD, unit="M01", phone="13800000002")
LEADER = Person(id="wang", name="王网格长", role=Role.GRID_LEADER, unit="G01")
STAFF = Person(id="chen", name="陈社工", role=Role.COMMUNITY_STAFF, unit="C01", locale="en")
ADMIN = Person(id="zhao", name="赵主任", role=Role.SUBDISTRICT_ADMIN, unit="SD")
BOT = Person(id="", name="网格助手", role=Role.SUBDISTRICT_ADMIN, unit="SD", auto=True)


def make_case(**changes: Any) -> Case:
    values: dict[str, Any] = dict(
        number=12, microgrid="M01", reporter_id="liu", origin_platform="console",
        origin_chat_id=GROUP, text="3幢楼道灯坏了，晚上很黑", category="facility",
        priority=Priority.NORMAL, status=Status.ASSIGNED, level=0, assignee_id="zhang",
        claim_by=NOW + timedelta(hours=2), resolve_by=NOW + timedelta(hours=48),
        created_at=NOW, updated_at=NOW,
    )
    values.update(changes)
    return Case(**values)


CASE = make_case()
URGENT = make_case(number=13, text="楼道里有烟，可能着火了", category="safety",
                   priority=Priority.URGENT, claim_by=NOW + timedelta(minutes=15),
                   resolve_by=NOW + timedelta(hours=4))
CLAIMED = make_case(number=14, status=Status.CLAIMED, claimed_at=NOW)
RESOLVED = make_case(number=15, status=Status.RESOLVED, claimed_at=NOW, resolved_at=NOW)
RATED = make_case(number=16, status=Status.CLOSED, claimed_at=NOW, resolved_at=NOW,
                  closed_at=NOW, rating=4, rating_text="修得很快")
ESCALATED = make_case(number=17, level=1, assignee_id="wang")
LOW = make_case(number=18, text="请问怎么办理居住证", category="question",
                priority=Priority.LOW)
ALL_STATUSES = [make_case(number=20 + i, status=s) for i, s in enumerate(Status)]

EVENTS = [
    CaseEvent(case_number=12, at=NOW, actor_id="liu", kind="reported", text=CASE.text),
    CaseEvent(case_number=12, at=NOW, actor_id="liu", kind="assigned",
              data={"assignee": "zhang", "level": 0, "why": "reported"}),
    CaseEvent(case_number=12, at=NOW, actor_id=None, kind="unreachable",
              data={"person": "zhang"}),
    CaseEvent(case_number=12, at=NOW + timedelta(minutes=5), actor_id="zhang", kind="claimed"),
    CaseEvent(case_number=12, at=NOW + timedelta(hours=1), actor_id="zhang", kind="note",
              text="已联系物业，明天上午来修"),
    CaseEvent(case_number=12, at=NOW + timedelta(hours=2), actor_id="zhang", kind="escalated",
              text="需要物业公司配合", data={"from_level": 0, "to_level": 1}),
    CaseEvent(case_number=12, at=NOW + timedelta(hours=3), actor_id="wang", kind="resolved",
              text="灯已换好"),
    CaseEvent(case_number=12, at=NOW + timedelta(hours=4), actor_id="liu", kind="reopened",
              text="灯还是不亮"),
    CaseEvent(case_number=12, at=NOW + timedelta(hours=5), actor_id="liu", kind="rated",
              text="修得很快"),
    CaseEvent(case_number=12, at=NOW + timedelta(hours=5), actor_id="liu", kind="confirmed"),
    CaseEvent(case_number=12, at=NOW + timedelta(hours=6), actor_id="liu", kind="cancelled"),
    CaseEvent(case_number=12, at=NOW + timedelta(hours=6), actor_id=None, kind="unassigned"),
    CaseEvent(case_number=12, at=NOW + timedelta(hours=7), actor_id="x", kind="something_new"),
]
EVENTS += [
    CaseEvent(case_number=12, at=NOW + timedelta(hours=8), actor_id=None, kind=kind,
              text=text, data=data)
    for kind, text, data in [
        ("reminded", "", {"window": "claim"}), ("overdue", "", {"window": "claim"}),
        ("idle_reminded", "", {}), ("idle_reverted", "", {"idle": "1d"}),
        ("closed_no_feedback", "", {"within": "72h"}),
        ("extension_requested", "等报价", {"span": "2d"}), ("extended", "", {"span": "2d"}),
        ("extension_refused", "今天必须修", {}), ("returned", "不是本网格", {}),
        ("rerouted", "隔壁楼", {"from_microgrid": "M01", "to_microgrid": "M02"}),
    ]
]
NAMES = {"liu": "刘奶奶", "zhang": "张阿姨", "wang": "王网格长"}
OFFER = ReportOffer(id=7, created_at=NOW, platform="console", chat_id="dm:liu",
                    person_id="liu", text="楼下的路灯坏了好几天了")
URGENT_OFFER = dataclasses.replace(OFFER, id=8, chat_id=GROUP, text="7幢阳台冒烟了！",
                                   urgent=True)
RATED_HERE = CaseEvent(case_number=16, at=NOW, actor_id="liu", kind="rated", text="修得很快",
                       data={"said_in": f"console:{GROUP}"})

#: Each template with the contexts its callers give it (handlers/*.py, gridbot/cases.py,
#: gridbot/engine.py, the UserErrors they raise), one per branch worth covering.
CONTEXTS: dict[str, list[dict[str, Any]]] = {
    "button_claim": [{"case": CASE}],
    "button_confirm": [{"case": RESOLVED}],
    "error_already_claimed": [
        {"case": CLAIMED, "holder": STEWARD, "mine": False},
        {"case": CLAIMED, "holder": None, "mine": False},
        {"case": CLAIMED, "holder": STEWARD, "mine": True},
    ],
    "error_already_rated": [{"case": RATED, "command": "rate"}],
    "error_ambiguous_person": [{"name": "李", "people": [STEWARD, LEADER, STAFF]}],
    "error_where": [{"command": "bind", "where": "group"}, {"command": "x", "where": "group"},
                    {"command": "x", "where": "private"}],
    "error_bind_scope": [{"code": "M04"}],
    "error_bind_answers_only": [{}],
    "error_generic": [{}],
    "error_internal": [{}],
    "error_set_aside": [{}],
    "error_given_up": [{"sent_at": NOW, "text": "统计 9999-12 <b>&"}, {"sent_at": NOW, "text": ""}],
    "error_link_code": [{"reason": "unknown"}, {"reason": "used"}, {"reason": "expired"}],
    "error_no_microgrid": [{}],
    "error_no_person": [{"name": "李师傅"}],
    "error_no_unit": [{"code": "M99"}],
    "error_nobody_above": [{"case": CASE}],
    "error_not_bound": [{}],
    "error_no_console": [{}],
    "reply_web": [{"url": "https://grid.example.org/console/login/Qw97X-V29PS2RelcB0BnBM",
                   "expires": NOW, "minutes": 10}],
    "error_not_found": [{"number": 404}],
    "error_not_reporter": [{"number": 12, "command": "cancel"}],
    "error_not_your_case": [{"number": 12, "microgrid": "M01", "level": lvl}
                            for lvl in range(4)],
    "error_permission": [{"command": "claim", "role": role.value} for role in Role],
    "error_rating": [{"number": 12, "word": "评价"}],
    "error_reason_needed": [{"command": c, "word": c, "number": 12}
                            for c in ("reopen", "extend", "refuse", "return")],
    "error_same_assignee": [{"case": CASE, "target": STEWARD}],
    "error_too_long": [{"length": 2345, "limit": 2000}],
    "error_rate_limited": [
        {"scope": "person", "limit": 10, "window": timedelta(hours=1),
         "retry_at": NOW, "text": "3幢楼道灯坏了 <b>&"},
        {"scope": "chat", "limit": 60, "window": timedelta(minutes=30), "retry_at": NOW,
         "text": ""},
    ],
    "error_top_level": [{"case": make_case(level=3)}],
    "error_transition": [{"case": c, "command": "claim"} for c in ALL_STATUSES],
    "error_unknown_command": [{"word": "/foo"}],
    "error_usage": [{"command": spec.name, "word": "/" + spec.name} for spec in REGISTRY.specs],
    "help": [
        {"role": role.value,
         "sections": help_sections(REGISTRY.specs, role, linked=linked),
         "person": person, "linked": linked, "bound": bound}
        for role, person in [(Role.RESIDENT, RESIDENT), (Role.STEWARD, STEWARD),
                             (Role.GRID_LEADER, LEADER), (Role.COMMUNITY_STAFF, STAFF),
                             (Role.SUBDISTRICT_ADMIN, ADMIN)]
        for linked, bound in [(True, "M01"), (False, None)]
    ],
    "mine": [
        {"cases": [], "now": NOW},
        {"cases": [CASE], "now": NOW},
        {"cases": [CASE, URGENT, CLAIMED], "now": NOW + timedelta(hours=3)},
    ],
    "notify_assignee": [
        {"case": CASE, "event": "reported", "reason": "", "route": "on_duty",
         "reporter": RESIDENT, "actor": RESIDENT, "previous": None},
        {"case": URGENT, "event": "reported", "reason": "", "route": "nobody_below",
         "reporter": None, "actor": RESIDENT, "previous": None},
        {"case": CASE, "event": "transferred", "reason": "他更熟悉", "route": "transfer",
         "reporter": RESIDENT, "actor": STEWARD, "previous": STEWARD},
        {"case": CASE, "event": "transferred", "reason": "", "route": "transfer",
         "reporter": RESIDENT, "actor": STEWARD, "previous": None},
        {"case": ESCALATED, "event": "escalated", "reason": "需要物业公司配合",
         "route": "on_duty", "reporter": RESIDENT, "actor": STEWARD, "previous": STEWARD,
         "why": "manual", "within": ""},
        {"case": ESCALATED, "event": "escalated", "reason": "", "route": "on_duty",
         "reporter": RESIDENT, "actor": STEWARD, "previous": STEWARD, "why": "manual",
         "within": ""},
        {"case": ESCALATED, "event": "escalated", "reason": "", "route": "level",
         "reporter": RESIDENT, "actor": BOT, "previous": STEWARD, "why": "claim_missed",
         "within": "2h"},
        {"case": ESCALATED, "event": "escalated", "reason": "", "route": "nobody_below",
         "reporter": None, "actor": BOT, "previous": None, "why": "resolve_missed",
         "within": "2d"},
        {"case": ESCALATED, "event": "returned", "reason": "不是本微网格的楼",
         "route": "level", "reporter": RESIDENT, "actor": STEWARD, "previous": STEWARD},
        {"case": CASE, "event": "rerouted", "reason": "", "route": "roster",
         "reporter": RESIDENT, "actor": LEADER, "previous": STEWARD},
        {"case": CASE, "event": "idle", "reason": "", "route": "roster",
         "reporter": RESIDENT, "actor": BOT, "previous": STEWARD, "within": "1d12h"},
        {"case": CASE, "event": "idle", "reason": "", "route": "roster",
         "reporter": RESIDENT, "actor": BOT, "previous": STEWARD, "within": "2d6h",
         "since": NOW, "extended": None},
        {"case": ESCALATED, "event": "escalated", "reason": "", "route": "level",
         "reporter": RESIDENT, "actor": BOT, "previous": STEWARD, "why": "resolve_missed",
         "within": "2d", "extended": NOW, "since": None},
        {"case": CASE, "event": "reopened", "reason": "灯还是不亮", "route": "reopened",
         "reporter": RESIDENT, "actor": RESIDENT, "previous": None},
    ],
    "notify_reporter": [
        {"case": CLAIMED, "event": "claimed", "actor": STEWARD, "text": ""},
        {"case": CLAIMED, "event": "note", "actor": STEWARD, "text": "已联系物业"},
        {"case": RESOLVED, "event": "resolved", "actor": STEWARD, "text": "灯已换好"},
        {"case": RESOLVED, "event": "resolved", "actor": STEWARD, "text": ""},
        {"case": CASE, "event": "transferred", "actor": LEADER, "text": ""},
        {"case": ESCALATED, "event": "escalated", "actor": LEADER, "text": ""},
        {"case": make_case(status=Status.CLOSED), "event": "no_feedback", "actor": BOT,
         "text": "", "within": "72h"},
        {"case": CASE, "event": "rerouted", "actor": STEWARD, "text": ""},
    ],
    "notify_staff": [
        {"case": make_case(status=Status.CANCELLED), "event": "cancelled", "actor": RESIDENT,
         "text": "已经自己修好了"},
        {"case": make_case(status=Status.CANCELLED), "event": "cancelled", "actor": RESIDENT,
         "text": ""},
        {"case": RATED, "event": "confirmed", "actor": RESIDENT, "text": ""},
        {"case": RATED, "event": "rated", "actor": RESIDENT, "text": "修得很快"},
        {"case": RATED, "event": "rated", "actor": RESIDENT, "text": ""},
        {"case": CLAIMED, "event": "claimed_by_other", "actor": LEADER, "text": ""},
        {"case": CLAIMED, "event": "note", "actor": LEADER, "text": "明天来修"},
        {"case": RESOLVED, "event": "resolved", "actor": LEADER, "text": "灯已换好"},
        {"case": RESOLVED, "event": "resolved", "actor": LEADER, "text": ""},
        {"case": CASE, "event": "transferred", "actor": STEWARD, "text": "请假",
         "target": LEADER},
        {"case": CASE, "event": "transferred", "actor": STEWARD, "text": "", "target": LEADER},
        {"case": ESCALATED, "event": "escalated", "actor": STEWARD, "text": "需要配合",
         "target": LEADER, "why": "", "within": ""},
        {"case": ESCALATED, "event": "escalated", "actor": STEWARD, "text": "",
         "target": LEADER, "why": "", "within": ""},
        {"case": ESCALATED, "event": "escalated", "actor": BOT, "text": "", "target": LEADER,
         "why": "claim_missed", "within": "2h"},
        {"case": CASE, "event": "idle_reverted", "actor": BOT, "text": "", "within": "36h"},
        {"case": CASE, "event": "idle_reverted", "actor": BOT, "text": "", "within": "2d6h",
         "since": NOW},
        {"case": ESCALATED, "event": "escalated", "actor": BOT, "text": "", "target": LEADER,
         "why": "resolve_missed", "within": "2d", "extended": NOW},
        {"case": make_case(status=Status.CLOSED), "event": "no_feedback", "actor": BOT,
         "text": "", "within": "72h"},
        {"case": CASE, "event": "rerouted", "actor": LEADER, "text": "在隔壁楼",
         "target": STEWARD},
    ],
    "button_not_fixed": [{}],
    "not_fixed_reason": [{}],
    "button_approve": [{}],
    "notify_reminder": [
        {"case": CASE, "window": "claim", "deadline": CASE.claim_by, "now": NOW},
        {"case": CLAIMED, "window": "resolve", "deadline": CLAIMED.resolve_by,
         "now": NOW + timedelta(hours=36)},
    ],
    "notify_overdue": [
        {"case": make_case(level=3), "window": "claim", "within": "2h", "count": 1, "limit": 3},
        {"case": make_case(level=3, status=Status.CLAIMED), "window": "resolve",
         "within": "48h", "count": 3, "limit": 3},
    ],
    "notify_idle": [{"case": CLAIMED, "since": NOW, "revert_at": NOW + timedelta(hours=36)},
                    {"case": CLAIMED, "since": NOW, "revert_at": NOW + timedelta(days=7),
                     "protected": NOW + timedelta(days=7)}],
    "digest": [
        {"cases": [CASE], "soon": [CASE], "due": {12: CASE.claim_by}, "now": NOW},
        {"cases": [CASE, CLAIMED, make_case(number=30, status=Status.NEW, claim_by=None)],
         "soon": [], "due": {12: CASE.claim_by, 14: CLAIMED.resolve_by, 30: None},
         "now": NOW + timedelta(hours=3)},
    ],
    "reply_extend": [
        {"case": CLAIMED, "span": "2d", "approver": LEADER, "deadline": CLAIMED.resolve_by},
        {"case": CLAIMED, "span": "3h", "approver": None, "deadline": CLAIMED.resolve_by},
        {"case": CLAIMED, "span": "7d", "approver": LEADER, "deadline": CLAIMED.resolve_by,
         "new_deadline": CLAIMED.resolve_by + timedelta(days=7)},
    ],
    "notify_extension": [
        {"case": CLAIMED, "actor": STEWARD, "span": "2d", "reason": "等物业报价",
         "window": "resolve", "deadline": CLAIMED.resolve_by,
         "new_deadline": CLAIMED.resolve_by + timedelta(days=2)},
        {"case": CASE, "actor": STEWARD, "span": "1h", "reason": "在外面",
         "window": "claim", "deadline": CASE.claim_by,
         "new_deadline": CASE.claim_by + timedelta(hours=1)},
    ],
    "reply_decide": [
        {"case": CLAIMED, "approved": True, "deadline": NOW, "requester": STEWARD},
        {"case": CLAIMED, "approved": False, "deadline": NOW, "requester": None},
    ],
    "notify_decision": [
        {"case": CLAIMED, "approved": True, "actor": LEADER, "deadline": NOW, "text": ""},
        {"case": CLAIMED, "approved": False, "actor": LEADER, "deadline": NOW,
         "text": "今天必须修好"},
    ],
    "reply_return": [{"case": ESCALATED, "target": LEADER}],
    "reply_reroute": [{"case": CASE, "target": STEWARD}, {"case": CASE, "target": None}],
    "error_extension": [
        {"case": URGENT, "why": "urgent"}, {"case": CLAIMED, "why": "pending"},
        {"case": CLAIMED, "why": "overdue"}, {"case": CLAIMED, "why": "too_many", "limit": 2},
        {"case": CLAIMED, "why": "too_long", "limit": "7d"},
    ],
    "error_no_extension": [{"case": CLAIMED}],
    "error_not_above": [{"case": CLAIMED, "command": "approve"}],
    "error_return": [{"case": ESCALATED}],
    "error_no_microgrid_code": [{"code": "M99"}],
    "error_reroute_scope": [{"code": "M04"}],
    "error_same_microgrid": [{"case": CASE, "code": "M01"}],
    "notify_urgent": [
        {"case": URGENT, "assignee": STEWARD, "reporter": RESIDENT},
        {"case": URGENT, "assignee": None, "reporter": None},
    ],
    "overdue": [
        {"cases": [], "now": NOW},
        {"cases": [CASE], "now": NOW + timedelta(days=3)},
        {"cases": [CASE, URGENT, CLAIMED], "now": NOW + timedelta(days=3)},
    ],
    "private_hint": [{}],
    "mask_address": [{}],
    "button_file": [{"urgent": False}, {"urgent": True}],
    "offer_report": [
        {"offer": OFFER, "valid": timedelta(hours=24)},
        {"offer": URGENT_OFFER, "valid": timedelta(hours=24), "has_buttons": True},
    ],
    "offer_urgent": [
        {"offer": URGENT_OFFER},
        {"offer": URGENT_OFFER, "has_buttons": True},
        {"offer": None, "emergency": (("fire", "119"), ("燃气抢修", "96777"))},
    ],
    "reply_followup": [{"case": URGENT, "assignee": STEWARD}, {"case": URGENT, "assignee": None}],
    "error_offer": [
        {"reason": "used", "case_number": 12},
        {"reason": "expired", "valid": timedelta(hours=24)},
        {"reason": "unknown", "number": 99},
    ],
    "reply_bind": [
        {"code": "M01", "name": "幸福里一号微网格", "before": None},
        {"code": "M01", "name": "幸福里一号微网格", "before": "M02"},
        {"code": "M01", "name": "幸福里一号微网格", "before": "M01"},
    ],
    "reply_cancel": [{"case": make_case(status=Status.CANCELLED)}],
    "reply_claim": [{"case": CLAIMED}],
    "reply_confirm": [{"case": RATED, "rated": True},
                      {"case": make_case(status=Status.CLOSED), "rated": False}],
    "reply_done": [{"case": RESOLVED}],
    "reply_duty": [
        {"on": True, "until": None, "open_count": 0},
        {"on": False, "until": None, "open_count": 0},
        {"on": False, "until": NOW + timedelta(days=2), "open_count": 1},
        {"on": False, "until": NOW + timedelta(hours=5), "open_count": 3},
    ],
    "reply_escalate": [{"case": ESCALATED, "target": LEADER}],
    "reply_link": [
        {"person": STEWARD, "role": "steward", "moved": 0, "in_private": True},
        {"person": RESIDENT, "role": "resident", "moved": 1, "in_private": False},
        {"person": STAFF, "role": "community_staff", "moved": 3, "in_private": True},
    ],
    "reply_note": [{"case": CLAIMED}],
    "reply_rate": [{"case": RATED}, {"case": make_case(status=Status.CLOSED, rating=1)}],
    "reply_reopen": [{"case": make_case(status=Status.ASSIGNED), "assignee": STEWARD},
                     {"case": make_case(status=Status.REOPENED), "assignee": None}],
    "reply_report": [
        {"case": CASE, "assignee": STEWARD},
        {"case": URGENT, "assignee": STEWARD},
        {"case": URGENT, "assignee": None},
        {"case": LOW, "assignee": LEADER},
    ],
    "reply_transfer": [{"case": CASE, "target": LEADER}],
    "status_detail": [
        {"case": CASE, "events": EVENTS, "names": NAMES, "assignee": STEWARD,
         "show_private": True},
        {"case": CLAIMED, "events": EVENTS, "names": NAMES, "assignee": STEWARD,
         "show_private": False},
        {"case": RATED, "events": EVENTS[:2], "names": NAMES, "assignee": None,
         "show_private": True},
        {"case": make_case(status=Status.CANCELLED, assignee_id=None), "events": [],
         "names": {}, "assignee": None, "show_private": False},
        {"case": RATED, "events": EVENTS, "names": NAMES, "assignee": STEWARD,
         "rated_event": RATED_HERE, "show_private": False},
    ],
    "status_list": [
        {"open_cases": [], "recent": [], "is_staff": False},
        {"open_cases": [], "recent": [], "is_staff": True},
        {"open_cases": [CASE, CLAIMED], "recent": [], "is_staff": False},
        {"open_cases": [], "recent": [RATED], "is_staff": False},
        {"open_cases": [CASE], "recent": [RATED, make_case(status=Status.CANCELLED)],
         "is_staff": True},
    ],
}


# -- notices (handlers/notices.py, gridbot/notices.py) --
NOTICE = Notice(id=7, author_id="chen", scope="C01", microgrids=("M01", "M02"),
                text="周六上午9点在活动室免费量血压，详情 https://example.org/?a=1&b=2",
                status=NoticeStatus.SENDING, send_at=NOW, created_at=NOW)
SCHEDULED = dataclasses.replace(NOTICE, status=NoticeStatus.SCHEDULED,
                                send_at=NOW + timedelta(days=1))
DONE = dataclasses.replace(NOTICE, status=NoticeStatus.DONE, done_at=NOW)
FAILED = Delivery(id=1, notice_id=7, platform="telegram", chat_id="-100", microgrid="M01",
                  title="幸福里1-3幢群", status=DeliveryStatus.FAILED, updated_at=NOW,
                  error="Forbidden: bot was kicked from the group chat")
IN_DOUBT = Delivery(id=2, notice_id=7, platform="telegram", chat_id="-101", microgrid="M02",
                    title="", status=DeliveryStatus.UNKNOWN, updated_at=NOW)
COUNTS = DeliveryCounts(total=120, sent=117, acknowledged=40, failed=2, unknown=1, acks=230)
SOME_PENDING = DeliveryCounts(total=120, queued=30, sending=5, sent=85, acknowledged=3, acks=4)
ALL_FINE = DeliveryCounts(total=3, sent=3)
#: customer groups (gridbot.group_tasks): one left out by its owner, one over its quota,
#: and the owners' group-sendings
NOT_SENT = Delivery(id=3, notice_id=7, platform="wecom_customer", chat_id="wrA2",
                    microgrid="M01", title="幸福里2号楼居民群", status=DeliveryStatus.NOT_SENT,
                    updated_at=NOW, error="deadline")
OVER = dataclasses.replace(NOT_SENT, id=4, chat_id="wrB1", title="和平路居民群",
                           status=DeliveryStatus.OVER_QUOTA, error="over_quota")
WITH_GROUPS = dataclasses.replace(COUNTS, total=125, waiting=2, not_sent=1, over_quota=1)
OWNERS = [
    OwnerLine(name="张阿姨", microgrid="M01", groups=2, waiting=0, sent=2,
              status=GroupTaskStatus.DONE, deadline=NOW, told=True, reminded=False, error=""),
    OwnerLine(name="李师傅", microgrid="M02", groups=2, waiting=2, sent=0,
              status=GroupTaskStatus.WAITING, deadline=NOW, told=False, reminded=True,
              error=""),
    OwnerLine(name="liayi", microgrid="M02", groups=1, waiting=0, sent=0,
              status=GroupTaskStatus.FAILED, deadline=NOW, told=True, reminded=False,
              error="WeCom customer groups: errcode 41048 no valid chat"),
]
CONTEXTS.update({
    "notice": [{"notice": NOTICE, "author": STAFF, "office": "C01"},
               {"notice": NOTICE, "author": None, "office": "SD"},
               # a robot's copy: nobody replies there; it ends with the notice's page
               {"notice": NOTICE, "author": STAFF, "office": "C01", "replies": False,
                "link": "https://gridbot.example.org/r/M01/1.0123456789abcdef0123/notice/7"}],
    "button_ack": [{"notice": NOTICE}],
    "notice_forward": [{"notice": NOTICE, "microgrid": "M01"}],
    "notice_group_text": [{"notice": NOTICE, "author": STAFF, "link": True},
                          {"notice": NOTICE, "author": None, "link": False}],
    "notice_group_card_title": [{"notice": NOTICE}],
    "notice_group_card_desc": [{"notice": NOTICE}],
    "notice_group_task": [{"notice": NOTICE, "groups": ["幸福里1号楼居民群", "幸福里2号楼居民群"],
                           "deadline": NOW}],
    "notice_group_remind": [{"notice": NOTICE, "groups": ["和平路居民群"], "deadline": NOW},
                            {"notice": NOTICE, "groups": [], "deadline": NOW}],
    "notice_group_start": [
        {"notice": NOTICE, "deadline": NOW, "over": [],
         "owners": [{"name": "张阿姨", "groups": 2, "told": True},
                    {"name": "liayi", "groups": 1, "told": False}]},
        {"notice": NOTICE, "deadline": NOW, "owners": [], "over": ["和平路居民群"]}],
    "reply_notice": [{"notice": NOTICE, "groups": 120, "microgrids": 100, "scheduled": False},
                     {"notice": SCHEDULED, "groups": 3, "microgrids": 2, "scheduled": True},
                     {"notice": NOTICE, "groups": 1, "microgrids": 2, "scheduled": False,
                      "pages": True},
                     {"notice": NOTICE, "groups": 1, "microgrids": 2, "scheduled": False,
                      "forward": 1, "customer": 3, "over": ["和平路居民群"]},
                     {"notice": SCHEDULED, "groups": 0, "microgrids": 2, "scheduled": True,
                      "customer": 2, "over": ["和平路居民群"]}],
    "notice_status": [
        {"notice": NOTICE, "counts": SOME_PENDING, "problems": [], "author": STAFF},
        {"notice": DONE, "counts": COUNTS, "problems": [FAILED, IN_DOUBT], "author": None},
        {"notice": DONE, "counts": COUNTS, "problems": [FAILED] * 25, "author": STAFF},
        {"notice": SCHEDULED, "counts": DeliveryCounts(), "problems": [], "author": STAFF},
        # in private where the residents' pages are served: each micro-grid's link
        {"notice": DONE, "counts": dataclasses.replace(COUNTS, page_acks=57, people=280),
         "problems": [], "author": STAFF, "pages": True, "more": 3,
         "links": [PageLink(microgrid="M01", acks=50,
                            url="https://gridbot.example.org/r/M01/1.0123456789abcdef0123/notice/7"),
                   PageLink(microgrid="M02", acks=7,
                            url="https://gridbot.example.org/r/M02/2.0123456789abcdef0123/notice/7")]},
        {"notice": DONE, "counts": COUNTS, "problems": [], "author": STAFF, "pages": False,
         "links": [], "more": 0},
        {"notice": dataclasses.replace(NOTICE, status=NoticeStatus.CANCELLED),
         "counts": DeliveryCounts(), "problems": [], "author": STAFF},
        # customer groups: who still has to tap, and the groups not sent
        {"notice": NOTICE, "counts": WITH_GROUPS, "problems": [NOT_SENT, OVER],
         "author": STAFF, "owners": OWNERS},
    ],
    "notice_list": [
        {"scheduled": [], "recent": []},
        {"scheduled": [SCHEDULED], "recent": []},
        {"scheduled": [SCHEDULED], "recent": [(DONE, COUNTS), (NOTICE, SOME_PENDING)]},
        {"scheduled": [], "recent": [(DONE, ALL_FINE)]},
        {"scheduled": [], "recent": [(DONE, dataclasses.replace(ALL_FINE, page_acks=12))]},
    ],
    "notice_summary": [
        {"notice": DONE, "counts": ALL_FINE, "problems": []},
        {"notice": DONE, "counts": COUNTS, "problems": [FAILED, IN_DOUBT]},
        {"notice": DONE, "counts": DeliveryCounts(), "problems": []},
        {"notice": DONE, "counts": WITH_GROUPS, "problems": [NOT_SENT, OVER]},
    ],
    "reply_notice_cancel": [{"notice": SCHEDULED, "actor": None},
                            {"notice": SCHEDULED, "actor": ADMIN}],
    "reply_notice_resend": [{"notice": DONE, "queued": 3, "counts": COUNTS},
                            {"notice": DONE, "queued": 0, "counts": COUNTS},
                            {"notice": SCHEDULED, "queued": 0, "counts": DeliveryCounts()}],
    "reply_ack": [{}],
    # what the engine appends when evidence was sent on another platform than the reader's
    "evidence_elsewhere": [{"platforms": {"telegram": {"photo": 2, "voice": 1}}},
                           {"platforms": {"wecom": {"document": 1}, "someplace": {"photo": 1}}}],
    "error_notice_scope": [{"reason": r, "item": "C09"} for r in ("unknown", "outside", "empty")],
    "error_notice_time": [{"reason": r, "text": "25:99"} for r in ("unreadable", "past",
                                                                   "too_far", "no_such_day")]
    + [{"reason": "no_such_day", "text": "02-29", "year": 2029}],
    "error_notice_not_found": [{"number": 404}],
    "error_notice_state": [{"notice": DONE},
                           {"notice": dataclasses.replace(NOTICE,
                                                          status=NoticeStatus.CANCELLED)}],
})


# -- statistics (handlers/stats.py): a report over a few of the cases above --
_STATS_ORG = stats.Org(
    units={code: stats.Unit(code=code, kind=kind, name=UNITS[code], parent=parent)
           for code, kind, parent in [("SD", "subdistrict", None), ("C01", "community", "SD"),
                                      ("G01", "grid", "C01"), ("M01", "microgrid", "G01")]},
    people={"zhang": ("张阿姨", "steward")},
    categories={c.code: c.name("zh-CN") for c in CONFIG.policy.categories},
    households={"M01": 100},
)
_STATS_EVENTS = [
    CaseEvent(case_number=16, at=NOW, actor_id="liu", kind="reported"),
    CaseEvent(case_number=16, at=NOW, actor_id=None, kind="assigned", data={"assignee": "zhang"}),
    CaseEvent(case_number=16, at=NOW + timedelta(minutes=20), actor_id="zhang", kind="claimed"),
    CaseEvent(case_number=16, at=NOW + timedelta(hours=3), actor_id="zhang", kind="resolved"),
    CaseEvent(case_number=16, at=NOW + timedelta(hours=4), actor_id="liu", kind="rated"),
    CaseEvent(case_number=16, at=NOW + timedelta(hours=4), actor_id="liu", kind="confirmed"),
]


def _stats_report(histories: list[Any], scope: str = "C01") -> stats.Report:
    return stats.compute(histories, scope=scope, microgrids=["M01"],
                         period=stats.month_period("2024-05", TZ), as_of=NOW + timedelta(days=1),
                         org=_STATS_ORG, tz=TZ, open_cases=[CASE])


_BUSY = _stats_report([(RATED, _STATS_EVENTS), (CASE, EVENTS[:2]),
                       (make_case(number=21, status=Status.CANCELLED),
                        [CaseEvent(case_number=21, at=NOW, actor_id="liu", kind="cancelled")])])
_QUIET = _stats_report([])
CONTEXTS.update({
    "stats": [
        {"report": _BUSY, "rows": _BUSY.by_microgrid, "kind": "microgrid", "staff": True},
        {"report": _BUSY, "rows": (), "kind": "microgrid", "staff": False},
        {"report": _QUIET, "rows": _QUIET.by_community, "kind": "community", "staff": True},
        {"report": _stats_report([(RATED, _STATS_EVENTS)], scope="M01"), "rows": (),
         "kind": "microgrid", "staff": False},
    ],
    "stats_chart": [
        {"report": _BUSY, "titles": ["每日报事与办结（2026年11月）", "各微网格解决率"]},
        {"report": _QUIET, "titles": ["每日报事与办结（2026年11月）"]},
    ],
    "error_stats": [{"why": "scope", "code": "C09"}, {"why": "period", "text": "下个月"}]
    + [{"why": why, "text": text, "limit": limit, "first": date(2000, 1, 1),
        "last": date(2099, 12, 31)}
       for why, text, limit in (("out_of_range", "9999-12", None),
                                ("no_such_day", "2026-02-30", None),
                                ("reversed", "2026-10-15~2026-10-01", None),
                                ("too_long", "999天", 366))],
    "error_duration": [
        {"reason": "unreadable", "text": "三两天", "limit": None, "command": "extend",
         "word": "延期"},
        {"reason": "zero", "text": "0h", "limit": None, "command": "duty", "word": "下班"},
        {"reason": "too_long", "text": "99999999999d", "limit": timedelta(days=90),
         "command": "duty", "word": "/duty"},
    ],
})

# Issue 15, items 1, 5 and 8: who was told (``notified``: person id -> None now, or when
# quiet hours let the message go), refusals that say who holds a case and what to do,
# typos of commands, a report too short, and no 收到 where replies never reach the bot.
_MORNING = datetime(2024, 5, 7, 7, 0, tzinfo=TZ)  # when quiet hours end
CONTEXTS.update({
    "did_you_mean": [
        {"suggestions": [Suggestion(name="claim", line="认领 1", command="/claim 1")],
         "has_buttons": True},
        {"suggestions": [Suggestion(name="status", line="进度 1", command="/status 1"),
                         Suggestion(name="note", line="进展 1", command="/note 1")]},
    ],
    "error_too_short": [{"text": "灯", "limit": 2, "word": "报事"}],
    "error_unreachable_person": [{"case": CASE, "target": LEADER, "why": why}
                                 for why in ("unlinked", "no_private", "blocked")],
})
CONTEXTS["reply_report"] += [
    {"case": CASE, "assignee": STEWARD, "alerted": [], "yourself": False,
     "notified": {"zhang": None}},
    {"case": CASE, "assignee": STEWARD, "alerted": [], "yourself": False,
     "notified": {"zhang": _MORNING}},
    {"case": URGENT, "assignee": STEWARD, "alerted": [LEADER, STAFF], "yourself": False,
     "notified": {"zhang": None, "wang": None, "chen": None}},
    {"case": CASE, "assignee": STEWARD, "alerted": [], "yourself": True,
     "notified": {"zhang": None}},
]
CONTEXTS["error_not_your_case"] += [
    {"number": 12, "microgrid": "M01", "level": 1, "holder": LEADER, "can_see": True},
    {"number": 12, "microgrid": "M01", "level": 0, "holder": STEWARD, "can_see": False},
    {"number": 12, "microgrid": "M01", "level": 0, "holder": None, "can_see": True},
]
CONTEXTS["error_not_reporter"] += [
    {"number": 12, "command": "confirm", "holder": STEWARD, "staff": True, "holds": True},
    {"number": 12, "command": "rate", "holder": STEWARD, "staff": True, "holds": False},
    {"number": 12, "command": "cancel", "holder": None, "staff": False, "holds": False},
]
CONTEXTS["error_unknown_command"] += [
    {"word": "/cliam", "suggestions": [Suggestion(name="claim", line="/claim 1",
                                                  command="/claim 1")]},
]
CONTEXTS["error_transition"] += [
    {"case": c, "command": command} for c in ALL_STATUSES
    for command in ("cancel", "confirm", "rate", "reopen")]
CONTEXTS["reply_link"] += [
    {"person": STEWARD, "role": "steward", "moved": 0, "in_private": True, "taken": [3, 5]},
    {"person": STEWARD, "role": "steward", "moved": 0, "in_private": False, "taken": []},
]
CONTEXTS["reply_transfer"] += [{"case": CASE, "target": LEADER, "notified": {"wang": _MORNING}},
                               {"case": CASE, "target": LEADER, "notified": {}}]
CONTEXTS["notify_staff"] += [{"case": CASE, "event": "rerouted", "actor": LEADER, "text": "",
                              "target": None}]
CONTEXTS["notify_reporter"] += [
    {"case": CASE, "event": "rerouted", "actor": None, "text": ""},
    {"case": CASE, "event": "assigned", "actor": STEWARD, "text": ""},
]
CONTEXTS["notify_assignee"] += [
    {"case": CASE, "event": "waiting", "reason": "", "route": "roster", "reporter": RESIDENT,
     "actor": None, "previous": None, "why": "", "within": "", "extended": None,
     "since": None, "skipped": []},
    {"case": CASE, "event": "reported", "reason": "", "route": "nobody_below",
     "reporter": RESIDENT, "actor": None, "previous": None, "why": "", "within": "",
     "extended": None, "since": None,
     "skipped": [(STEWARD, "unlinked"), (LEADER, "no_private"), (STAFF, "blocked")]},
]
CONTEXTS["notice"] += [{"notice": NOTICE, "author": STAFF, "office": "C01", "replies": False}]

# Issue 20: buildings and rooms, duplicates, incidents, anonymity.
PLACED = make_case(number=12, building="3", unit="2", room="201", text="3幢2单元201楼道灯坏了")
ANONYMOUS = make_case(number=19, anonymous="everyone", building="A")
MERGED = make_case(number=13, status=Status.CLOSED, merged_into=12)
LEAD = make_case(number=30, incident=30, building="3")
JOINED = make_case(number=31, incident=30)
_OFFER = ReportOffer(id=4, created_at=NOW, platform="console", chat_id=GROUP,
                     person_id="liu", text="楼道灯不亮", duplicate_of=12)
CONTEXTS.update({
    "button_follow": [{"case": PLACED}],
    "button_report_anyway": [{}],
    "reply_duplicate": [
        {"case": PLACED, "offer": _OFFER, "valid": timedelta(hours=24), "subject": "楼道灯",
         "affected": 1},
        {"case": CASE, "offer": _OFFER, "valid": timedelta(hours=24), "subject": "",
         "affected": 3, "has_buttons": True}],
    "reply_follow": [{"case": PLACED, "affected": 2}, {"case": PLACED, "affected": 1}],
    "error_follow": [{"case": PLACED, "reason": r} for r in ("own", "already", "closed")],
    "error_merge": [{"case": PLACED, "reason": r, "into": 7}
                    for r in ("same", "merged", "closed", "target", "not_merged", "incident")]
    + [{"case": PLACED, "reason": "target", "into": None}],
    "reply_merge": [{"case": MERGED, "into": PLACED, "affected": 2}],
    "reply_unmerge": [{"case": PLACED, "into": 7}],
    "notify_watcher": [
        {"case": PLACED, "event": e, "actor": STEWARD, "text": "已换灯泡", "via": v,
         "source_case": 13, "template": "notify_reporter"}
        for e in ("claimed", "note", "resolved", "assigned", "escalated", "rerouted",
                  "transferred", "no_feedback", "other") for v in ("follow", "merge")],
    "notify_incident": [
        {"case": LEAD, "reports": 20, "community": Community(code="C01", name="幸福里社区"),
         "window": timedelta(minutes=30)},
        {"case": CASE, "reports": 5, "community": None, "window": timedelta(minutes=30)}],
})
CONTEXTS["notify_reporter"] += [
    {"case": MERGED, "event": "merged", "into": PLACED},
    {"case": PLACED, "event": "unmerged", "into_number": 7},
]
CONTEXTS["notify_staff"] += [
    {"case": PLACED, "event": "followed", "actor": RESIDENT, "text": "楼道灯不亮", "affected": 2},
    {"case": MERGED, "event": "merged", "actor": STEWARD, "into": PLACED, "text": ""},
]
CONTEXTS["reply_done"] += [{"case": LEAD, "together": 19}]
CONTEXTS["reply_report"] += [
    {"case": PLACED, "assignee": STEWARD, "alerted": [], "notified": {"zhang": None},
     "incident": LEAD, "moved": True, "anonymous": True},
    {"case": JOINED, "assignee": None, "alerted": [], "incident": LEAD, "moved": False,
     "anonymous": False},
]
CONTEXTS["notify_assignee"] += [
    {"case": c, "event": "reported", "reason": "", "route": "roster", "reporter": RESIDENT,
     "actor": None, "previous": None, "why": "", "within": "", "extended": None,
     "since": None, "skipped": []} for c in (PLACED, ANONYMOUS,
                                             make_case(number=40, anonymous="neighbours"))]
CONTEXTS["status_detail"] += [
    {"case": PLACED, "events": [], "names": {}, "assignee": None, "rated_event": None,
     "show_private": True, "staff": True, "viewer": "zhang"},
]


def render(template: str, locale: str = "zh-CN", fmt: TextFormat = TextFormat.PLAIN, /, *,
           in_group: bool = False, here: str | None = None, renderer: Renderer = RENDERER,
           **context: Any) -> str:
    """Render as the engine does: it always adds ``bot``, ``cat``, ``unit``, ``in_group``
    and ``here`` (the chat the message goes to)."""
    if here is None:
        here = GROUP if in_group else "dm:someone"

    def cat(code: str) -> str:
        return CONFIG.policy.category(code).name(locale)

    def unit(code: str | None) -> str:
        return UNITS.get(code or "", code or "")

    return renderer.render(template, locale=locale, fmt=fmt, bot=CONFIG.bot_name, cat=cat,
                           unit=unit, in_group=in_group, here=here, **context)


# -- issue 20: shift swaps (handlers/swap.py) --
_SWAP = ShiftSwap(id=3, microgrid="M01", from_person="zhang", to_person="wang",
                  first="2024-05-11", last="2024-05-11", status=SwapStatus.PENDING,
                  asked_at=NOW)
_SAT = date(2024, 5, 11)
_SWAP_DAYS = {"swap": _SWAP, "first": _SAT, "last": _SAT}
_LONG_DAYS = {"swap": dataclasses.replace(_SWAP, status=SwapStatus.ACCEPTED),
              "first": _SAT, "last": date(2024, 5, 15)}
CONTEXTS.update({
    "button_swap": [{"accept": True}, {"accept": False}],
    "reply_swap": [{"event": "asked", "other": LEADER, **_SWAP_DAYS},
                   {"event": "accepted", "other": STEWARD, **_LONG_DAYS},
                   {"event": "declined", "other": STEWARD, **_SWAP_DAYS},
                   {"event": "cancelled", "other": LEADER, **_LONG_DAYS}],
    "notify_swap": [{"event": "asked", "actor": STEWARD, **_SWAP_DAYS},
                    {"event": "accepted", "actor": LEADER, **_LONG_DAYS},
                    {"event": "declined", "actor": LEADER, **_SWAP_DAYS},
                    {"event": "leader", "actor": LEADER, "giver": STEWARD, **_LONG_DAYS},
                    {"event": "cancelled", "actor": STEWARD, **_SWAP_DAYS},
                    {"event": "leader_cancelled", "actor": STEWARD, "giver": STEWARD,
                     "taker": LEADER, **_LONG_DAYS}],
    "error_swap": [
        {"reason": "day_unknown", "text": EVIL}, {"reason": "day_past", "text": "2024-01-01"},
        {"reason": "day_too_far", "text": "2030-01-01"}, {"reason": "day_too_long", "text": "x"},
        {"reason": "no_duty"}, {"reason": "self"},
        {"reason": "unreachable", "target": LEADER, "why": "no_private"},
        {"reason": "clash", "other": LEADER, **_SWAP_DAYS},
        {"reason": "not_found", "number": 3}, {"reason": "not_yours", "number": 3,
                                                "other": LEADER},
        {"reason": "not_giver", "number": 3, "other": STEWARD},
        {"reason": "answered", **_LONG_DAYS}, {"reason": "over", **_SWAP_DAYS}],
})
CONTEXTS["reply_duty"] = [*CONTEXTS["reply_duty"], {
    "on": True, "until": None, "open_count": 0, "swaps": [
        {"swap": _SWAP, "given": True, "other": LEADER, "first": _SAT, "last": _SAT},
        {**_LONG_DAYS, "given": False, "other": STEWARD}]}]


# -- issue 20: errands (handlers/errands.py) --
_ERRAND = Errand(case_number=12, beneficiary="3幢王奶奶", created_at=NOW, kind="medicine",
                 task="买降压药", household="3幢//502", tags=("独居老人",))
_ERRAND_DONE = dataclasses.replace(_ERRAND, consent_by="zhang", consent_how="电话确认",
                                   advanced_cents=3550, advanced_by="zhang",
                                   proof_reason="当面签收")
_SELF = dataclasses.replace(_ERRAND, beneficiary="", consent_how="self", tags=())
CONTEXTS.update({
    "button_take": [{"case": CASE}],
    "reply_errand": [
        {"event": "asked", "case": CASE, "errand": _ERRAND, "assignee": STEWARD,
         "private": True, "notified": {"zhang": None}},
        {"event": "asked", "case": CASE, "errand": _SELF, "assignee": None, "private": False},
        {"event": "taken", "case": CLAIMED, "errand": _ERRAND, "assignee": STEWARD,
         "private": True},
        {"event": "taken", "case": CLAIMED, "errand": _ERRAND, "assignee": STEWARD,
         "private": False},
        {"event": "consent", "case": CLAIMED, "errand": _ERRAND_DONE, "assignee": STEWARD,
         "private": True},
        {"event": "advanced", "case": CLAIMED, "errand": _ERRAND_DONE, "cents": 1000,
         "assignee": STEWARD, "private": True},
        {"event": "repaid", "case": CLAIMED, "errand": _ERRAND_DONE, "assignee": STEWARD,
         "private": True},
        {"event": "done", "case": RESOLVED, "errand": _ERRAND_DONE, "assignee": STEWARD,
         "private": True}],
    "notify_errand": [
        {"event": "offer", "case": CASE, "errand": _ERRAND, "reporter": RESIDENT},
        {"event": "details", "case": CASE, "errand": _SELF, "reporter": RESIDENT},
        {"event": "advanced", "case": CLAIMED, "errand": _ERRAND_DONE, "cents": 1000,
         "reporter": None, "actor": STEWARD}],
    "error_errand": [
        {"reason": "not_errand", "number": 12}, {"reason": "money", "text": EVIL},
        {"reason": "nothing_owed", "case": CASE, "errand": _ERRAND},
        {"reason": "proof", "case": CASE}, {"reason": "consent", "case": CASE,
                                             "errand": _ERRAND}],
})

# -- issue 20: patrol visits (handlers/patrol.py) --
_PATROL = Patrol(id=5, at=NOW, steward_id="zhang", microgrid="M01", platform="console",
                 chat_id="dm:zhang", buildings=("3幢",), households=5, rooms=("3幢//201",),
                 text=EVIL)
CONTEXTS.update({
    "button_patrol_case": [{"patrol": _PATROL}],
    "reply_patrol": [{"event": "logged", "patrol": _PATROL},
                     {"event": "logged", "patrol": dataclasses.replace(_PATROL, text="",
                                                                       rooms=())}],
    "error_patrol": [{"reason": "scope", "microgrid": "M01"},
                     {"reason": "not_found", "number": 5},
                     {"reason": "used", "patrol": dataclasses.replace(_PATROL, case_number=7)},
                     {"reason": "nothing", "patrol": _PATROL}],
})

# -- issue 20: errands and visits in /stats (gridbot/worklog.py) --
_WORK = Work(errands=3, errands_done=2, visits=4, households_visited=9, ledger_households=20,
             coverage=WorkRatio(num=9, den=20), cases_from_patrols=1,
             by_volunteer=(ErrandRow(key="xu", name="徐大姐", asked=2, done=2),
                           ErrandRow(key="", name="", asked=1)))
CONTEXTS["stats"] = [*CONTEXTS["stats"], {
    "report": dataclasses.replace(_BUSY, work=_WORK), "rows": (), "kind": "microgrid",
    "staff": True}]

def message_templates(locale: str) -> list[str]:
    return [n for n in RENDERER.template_names(locale) if n not in NOT_MESSAGES]


CASES = [
    pytest.param(name, i, ctx, id=f"{name}-{i}")
    for name, contexts in sorted(CONTEXTS.items())
    for i, ctx in enumerate(contexts)
]


def assert_clean(text: str) -> None:
    assert text, "rendered nothing"
    for marker in ("{{", "}}", "{%", "%}", "{#", "#}"):
        assert marker not in text, (marker, text)
    assert "Undefined" not in text
    assert "None" not in text, text
    for line in text.split("\n"):
        assert line == line.rstrip(), f"trailing space in {line!r}"
    assert text == text.strip()
    assert "\n\n\n" not in text


# -- the template set -------------------------------------------------------------------------


def test_both_locales_have_the_same_templates() -> None:
    assert set(LOCALES) == {"zh-CN", "en"}
    names = {loc: set(RENDERER.template_names(loc)) for loc in LOCALES}
    assert names["zh-CN"] == names["en"]
    assert {"_names", "cli", "help", "notify_assignee"} <= names["zh-CN"]


def test_every_template_has_contexts_in_this_file() -> None:
    for locale in LOCALES:
        assert set(message_templates(locale)) == set(CONTEXTS)


def test_template_files_live_in_the_package() -> None:
    assert DEFAULT_TEMPLATES == ROOT / "templates"
    assert RENDERER.templates_dir == DEFAULT_TEMPLATES


def test_templates_have_no_trailing_spaces_in_source() -> None:
    for path in sorted(DEFAULT_TEMPLATES.glob("*/*.j2")):
        for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            assert line == line.rstrip(), f"{path}:{number}"


# -- every template, every locale, every format -------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(("name", "index", "context"), CASES)
@pytest.mark.parametrize("in_group", [True, False])
def test_every_template_renders(name: str, index: int, context: dict[str, Any], locale: str,
                                fmt: TextFormat, in_group: bool) -> None:
    text = render(name, locale, fmt, in_group=in_group, **context)
    assert_clean(text)
    case = context.get("case")
    if case is not None and name != "button_confirm":  # a bare "fixed" label
        assert str(case.number) in text


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_locales_really_differ(name: str) -> None:
    """The English templates are not the Chinese ones served as a fallback."""
    context = CONTEXTS[name][0]
    assert render(name, "zh-CN", **context) != render(name, "en", **context)


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_plain_and_html_agree_when_nothing_needs_escaping(name: str) -> None:
    for locale in LOCALES:
        for context in CONTEXTS[name]:
            plain = render(name, locale, TextFormat.PLAIN, **context)
            html = render(name, locale, TextFormat.HTML, **context)
            if not re.search(r"[<>&\"']", plain):
                assert plain == html


@pytest.mark.parametrize("locale", LOCALES)
def test_english_text_has_no_chinese_except_names(locale: str) -> None:
    text = render("reply_claim", locale, case=CLAIMED)
    has_cjk = bool(re.search(r"[\u4e00-\u9fff]", text))
    assert has_cjk is (locale == "zh-CN")


# -- escaping ------------------------------------------------------------------------------------

#: (template, context) pairs that show a resident's full text
FULL_TEXT = [
    ("notify_assignee", {"case": make_case(text=EVIL), "event": "reported", "reason": "",
                         "route": "on_duty", "reporter": RESIDENT, "actor": RESIDENT,
                         "previous": None}),
    ("notify_urgent", {"case": make_case(text=EVIL, priority=Priority.URGENT),
                       "assignee": STEWARD, "reporter": RESIDENT}),
    ("reply_report", {"case": make_case(text=EVIL), "assignee": STEWARD}),
    ("status_detail", {"case": make_case(text=EVIL), "events": [], "names": {},
                       "assignee": None, "show_private": True}),
    ("notify_reporter", {"case": CLAIMED, "event": "note", "actor": STEWARD, "text": EVIL}),
    ("notify_reporter", {"case": RESOLVED, "event": "resolved", "actor": STEWARD,
                         "text": EVIL}),
    ("notify_staff", {"case": CLAIMED, "event": "note", "actor": LEADER, "text": EVIL}),
    ("notify_staff", {"case": make_case(status=Status.CANCELLED), "event": "cancelled",
                      "actor": RESIDENT, "text": EVIL}),
    ("notify_staff", {"case": RATED, "event": "rated", "actor": RESIDENT, "text": EVIL}),
    ("notify_assignee", {"case": CASE, "event": "reopened", "reason": EVIL,
                         "route": "reopened", "reporter": RESIDENT, "actor": RESIDENT,
                         "previous": None}),
    ("status_detail", {"case": make_case(rating=3, rating_text=EVIL, status=Status.CLOSED),
                       "events": [], "names": {}, "assignee": None, "show_private": True}),
]
#: ... and those that show it cut short in a list
SHORT_TEXT = [
    ("mine", {"cases": [make_case(text=EVIL_SHORT)], "now": NOW}),
    ("overdue", {"cases": [make_case(text=EVIL_SHORT)], "now": NOW + timedelta(days=3)}),
    ("status_list", {"open_cases": [make_case(text=EVIL_SHORT)], "recent": [],
                     "is_staff": False}),
    ("status_detail", {"case": CASE, "names": {}, "assignee": None, "show_private": True,
                       "events": [CaseEvent(case_number=12, at=NOW, actor_id=None,
                                            kind="note", text=EVIL_SHORT)]}),
    ("notify_reporter", {"case": make_case(text=EVIL_SHORT), "event": "claimed",
                         "actor": STEWARD, "text": ""}),
]


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(("name", "context"), FULL_TEXT + SHORT_TEXT)
def test_html_escapes_what_residents_typed(name: str, context: dict[str, Any],
                                           locale: str) -> None:
    expected = EVIL_SHORT_HTML if (name, context) in SHORT_TEXT else EVIL_HTML
    text = render(name, locale, TextFormat.HTML, in_group=False, **context)
    assert expected in text
    assert "<" not in text
    assert ">" not in text
    assert "&amp;amp;" not in text  # escaped once, not twice
    assert_clean(text)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(("name", "context"), FULL_TEXT + SHORT_TEXT)
def test_plain_keeps_what_residents_typed(name: str, context: dict[str, Any],
                                          locale: str) -> None:
    expected = EVIL_SHORT if (name, context) in SHORT_TEXT else EVIL
    text = render(name, locale, TextFormat.PLAIN, in_group=False, **context)
    assert expected in text
    assert "&lt;" not in text
    assert "&amp;" not in text


@pytest.mark.parametrize("locale", LOCALES)
def test_html_escapes_names_codes_and_words(locale: str) -> None:
    evil_person = Person(id="x<1>", name="<i>老李</i> & 儿子", role=Role.STEWARD, unit="M01",
                         phone="<tel>", address="3幢 & 4幢")
    cases = [
        ("error_ambiguous_person", {"name": "<李>", "people": [evil_person]}),
        ("error_no_person", {"name": "<李>"}),
        ("error_no_unit", {"code": "<M>"}),
        ("error_bind_scope", {"code": "<M>"}),
        ("error_unknown_command", {"word": "/<b>"}),
        ("reply_bind", {"code": "M01", "name": "<幸福里>", "before": "<M02>"}),
        ("notify_urgent", {"case": URGENT, "assignee": evil_person, "reporter": evil_person}),
        ("reply_transfer", {"case": CASE, "target": evil_person}),
        ("help", {"role": "steward", "sections": [("stewards", ["claim"])], "person": evil_person,
                  "linked": True, "bound": "M01"}),
    ]
    for name, context in cases:
        html = render(name, locale, TextFormat.HTML, **context)
        plain = render(name, locale, TextFormat.PLAIN, **context)
        assert "<" not in html, (name, html)
        assert "&lt;" in html, (name, html)
        assert "<" in plain, (name, plain)


@pytest.mark.parametrize("locale", LOCALES)
def test_html_escapes_the_bot_name_and_unit_names(locale: str) -> None:
    def unit(code: str | None) -> str:
        return "<一号> & 二号"

    text = RENDERER.render("notify_urgent", locale=locale, fmt=TextFormat.HTML, bot="<Bot>",
                           cat=lambda code: "<cat>", unit=unit, in_group=False, here="dm:x",
                           case=URGENT, assignee=None, reporter=None)
    assert "&lt;一号&gt; &amp; 二号" in text
    text = RENDERER.render("private_hint", locale=locale, fmt=TextFormat.HTML, bot="<Bot>",
                           cat=str, unit=unit, in_group=False, here="dm:x")
    assert "&lt;Bot&gt;" in text


def test_html_macros_are_not_escaped_twice() -> None:
    # The usage lines come from a macro; in HTML they must not show as &amp;lt; etc.
    for locale in LOCALES:
        for name in (spec.name for spec in REGISTRY.specs):
            plain = render("error_usage", locale, TextFormat.PLAIN, command=name, word=name)
            html = render("error_usage", locale, TextFormat.HTML, command=name, word=name)
            assert plain == html


# -- what the templates say ----------------------------------------------------------------------


def test_times_are_local_to_the_configured_time_zone() -> None:
    text = render("reply_claim", case=make_case(resolve_by=NOW))
    assert "05-06 09:30" in text  # 01:30 UTC is 09:30 in Asia/Shanghai
    london = Renderer(ZoneInfo("Europe/London"))
    assert "05-06 02:30" in render("reply_claim", case=make_case(resolve_by=NOW),
                                   renderer=london)


def test_times_across_midnight_change_the_date() -> None:
    late = datetime(2024, 12, 31, 17, 5, tzinfo=UTC)  # 01:05 on 1 January in Suzhou
    assert "01-01 01:05" in render("reply_claim", case=make_case(resolve_by=late))


def test_reply_duty_until_in_local_time() -> None:
    text = render("reply_duty", "en", on=False, until=NOW + timedelta(days=1), open_count=2)
    assert "05-07 09:30" in text
    assert "2 open cases" in text


def test_category_names_follow_the_locale() -> None:
    assert "公共设施" in render("reply_report", "zh-CN", in_group=True, case=CASE,
                               assignee=STEWARD)
    assert "Facilities" in render("reply_report", "en", in_group=True, case=CASE,
                                  assignee=STEWARD)


def test_reporter_text_stays_out_of_the_group() -> None:
    """A claim told to the reporter in the group names the case, not what they wrote."""
    for locale in LOCALES:
        context = {"case": CLAIMED, "event": "claimed", "actor": STEWARD, "text": ""}
        assert CLAIMED.text not in render("notify_reporter", locale, in_group=True, **context)
        assert CLAIMED.text in render("notify_reporter", locale, in_group=False, **context)
        in_group = render("reply_report", locale, in_group=True, case=CASE, assignee=STEWARD)
        assert CASE.text not in in_group


@pytest.mark.parametrize("locale", LOCALES)
def test_text_reported_elsewhere_stays_out_of_other_groups(locale: str) -> None:
    """Lists and details shown in a group hide texts that were not said in that group."""
    secret = make_case(text="我家老人走失了，请帮忙找", origin_chat_id="dm:liu")
    listed = [
        ("mine", {"cases": [secret], "now": NOW}),
        ("overdue", {"cases": [secret], "now": NOW + timedelta(days=3)}),
        ("status_list", {"open_cases": [secret], "recent": [], "is_staff": False}),
        ("status_detail", {"case": secret, "events": [], "names": {}, "assignee": None,
                           "show_private": False}),
    ]
    for name, context in listed:
        in_group = render(name, locale, in_group=True, here=GROUP, **context)
        assert "老人走失" not in in_group, (name, in_group)
        assert "老人走失" in render(name, locale, in_group=False, here="dm:zhang", **context)
        same_chat = {**context}
        for key in ("case", "cases", "open_cases"):
            if key in same_chat:
                value = same_chat[key]
                moved = make_case(text=secret.text, origin_chat_id=GROUP)
                same_chat[key] = [moved] if isinstance(value, list) else moved
        assert "老人走失" in render(name, locale, in_group=True, here=GROUP, **same_chat)


def test_urgent_reply_gives_emergency_numbers() -> None:
    for locale in LOCALES:
        assert "119" in render("reply_report", locale, case=URGENT, assignee=None)
        assert "119" not in render("reply_report", locale, case=CASE, assignee=STEWARD)


def test_notify_assignee_tells_how_to_claim() -> None:
    context = CONTEXTS["notify_assignee"][0]
    assert "认领 12" in render("notify_assignee", "zh-CN", **context)
    assert "/claim 12" in render("notify_assignee", "en", **context)
    assert RESIDENT.phone in render("notify_assignee", "zh-CN", **context)


def test_usage_names_each_command_in_both_locales() -> None:
    for spec in REGISTRY.specs:
        name = spec.name
        zh = render("error_usage", "zh-CN", command=name, word=name)
        en = render("error_usage", "en", command=name, word=name)
        assert f"/{spec.english[0]}" in en
        assert f"/{spec.english[0]}" in zh
        assert any(word in zh for word in spec.chinese), (name, zh)


def test_help_lists_only_what_the_role_may_do() -> None:
    resident = CONTEXTS["help"][0]
    assert resident["role"] == "resident"
    text = render("help", "zh-CN", **resident)
    assert "报事" in text
    assert "认领" not in text
    assert "绑定" not in text
    staff = next(c for c in CONTEXTS["help"] if c["role"] == "community_staff")
    text = render("help", "en", **staff)
    assert "/claim" in text
    assert "/bind" in text
    assert CONFIG.bot_name in text


def test_mine_marks_overdue_cases() -> None:
    text = render("mine", "zh-CN", cases=[CASE, CLAIMED], now=NOW + timedelta(hours=3))
    lines = text.split("\n")
    assert len(lines) == 3
    assert "已超时" in lines[1]  # claim window of #12 ran out
    assert "已超时" not in lines[2]  # #14 is claimed and has 48 h to resolve


@pytest.mark.parametrize("locale", LOCALES)
def test_lists_have_one_line_per_case(locale: str) -> None:
    cases = [CASE, URGENT, CLAIMED]
    for name in ("mine", "overdue"):
        text = render(name, locale, cases=cases, now=NOW + timedelta(days=3))
        assert len(text.split("\n")) == 1 + len(cases), (name, text)
    text = render("status_list", locale, open_cases=cases, recent=[], is_staff=False)
    assert len([line for line in text.split("\n") if line.startswith("#")]) == len(cases)


@pytest.mark.parametrize("locale", LOCALES)
def test_list_texts_are_cut_to_their_first_line(locale: str) -> None:
    long_case = make_case(text="一" * 100 + "\n第二行")
    two_lines = make_case(number=13, text="灯坏了\n第二行")
    text = render("status_list", locale, open_cases=[long_case, two_lines], recent=[],
                  is_staff=False)
    assert "一" * 100 not in text
    assert "第二行" not in text
    assert "灯坏了…" in text
    assert "…" in text.split("\n")[1]


def test_status_detail_history() -> None:
    text = render("status_detail", "zh-CN", **CONTEXTS["status_detail"][0])
    assert "unreachable" not in text
    assert "派给 张阿姨" in text
    assert "已联系物业" in text
    assert "something_new" in text  # an event kind without a label shows its name
    public = render("status_detail", "zh-CN", **CONTEXTS["status_detail"][1])
    reported = [line for line in public.split("\n") if "报事" in line]
    assert reported
    assert all("刘奶奶" not in line for line in reported)


def test_notify_staff_rating_shows_stars() -> None:
    text = render("notify_staff", "zh-CN", case=RATED, event="rated", actor=RESIDENT,
                  text="修得很快")
    assert "★★★★" in text
    assert "★★★★★" not in text


def test_blank_lines_from_conditions_collapse() -> None:
    text = render("help", "zh-CN", **CONTEXTS["help"][2])
    assert "\n\n\n" not in text
    assert not text.startswith("\n")


# -- the renderer ---------------------------------------------------------------------------------


def test_locale_for_picks_the_first_known_locale() -> None:
    assert RENDERER.locale_for("en") == "en"
    assert RENDERER.locale_for(None, "", "fr", "en", "zh-CN") == "en"
    assert RENDERER.locale_for() == "zh-CN"
    assert RENDERER.locale_for("fr", None) == "zh-CN"
    assert Renderer(TZ, default_locale="en").locale_for("de") == "en"


def test_unknown_locale_falls_back_to_the_default() -> None:
    context = {"case": CLAIMED}
    assert render("reply_claim", "fr", **context) == render("reply_claim", "zh-CN", **context)
    english = Renderer(TZ, default_locale="en")
    assert render("reply_claim", "fr", renderer=english, **context) == \
        render("reply_claim", "en", **context)


def test_a_context_variable_called_name_does_not_clash() -> None:
    # reply_bind, error_no_person and error_ambiguous_person all get ``name=...``.
    assert "幸福里" in RENDERER.render("reply_bind", locale="zh-CN", fmt=TextFormat.PLAIN,
                                      name="幸福里", code="M01", before=None,
                                      in_group=True, here=GROUP)


def test_missing_variables_are_errors_not_blanks() -> None:
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        RENDERER.render("reply_claim", locale="zh-CN", fmt=TextFormat.PLAIN)


def test_unknown_template_is_an_error() -> None:
    import jinja2

    with pytest.raises(jinja2.TemplateNotFound):
        RENDERER.render("no_such_template", locale="en", fmt=TextFormat.PLAIN)


def test_missing_template_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Renderer(TZ, templates_dir=tmp_path)


def test_english_falls_back_to_chinese_for_a_missing_template(tmp_path: Path) -> None:
    for locale in LOCALES:
        (tmp_path / locale).mkdir()
    (tmp_path / "zh-CN" / "only_zh.j2").write_text("只有中文 {{ x }}\n", encoding="utf-8")
    renderer = Renderer(TZ, templates_dir=tmp_path)
    assert renderer.render("only_zh", locale="en", fmt=TextFormat.PLAIN, x=1) == "只有中文 1"
    assert renderer.template_names("en") == []
    assert renderer.template_names("zh-CN") == ["only_zh"]


def test_render_tidies_lines(tmp_path: Path) -> None:
    (tmp_path / "zh-CN").mkdir()
    (tmp_path / "zh-CN" / "t.j2").write_text(
        "\n\n a  \n\n\n\nb\t\n{% if x %}\nc\n{% endif %}\n\n\n", encoding="utf-8")
    renderer = Renderer(TZ, templates_dir=tmp_path)
    assert renderer.render("t", locale="zh-CN", fmt=TextFormat.PLAIN, x=False) == "a\n\nb"
    assert renderer.render("t", locale="zh-CN", fmt=TextFormat.PLAIN, x=True) == "a\n\nb\nc"


def test_renderers_share_compiled_templates_yet_see_edits_and_formats(tmp_path: Path) -> None:
    """Every Renderer of a process reuses what another compiled (tests/conftest.py's bot
    builds one per test), per escaping mode, and compiles a template again once edited."""
    (tmp_path / "zh-CN").mkdir()
    template = tmp_path / "zh-CN" / "t.j2"
    template.write_text("一 {{ text }}", encoding="utf-8")

    def rendered(fmt: TextFormat) -> str:
        return Renderer(TZ, templates_dir=tmp_path).render("t", locale="zh-CN", fmt=fmt,
                                                           text="<b>")

    assert rendered(TextFormat.PLAIN) == "一 <b>"
    assert rendered(TextFormat.HTML) == "一 &lt;b&gt;"
    assert rendered(TextFormat.PLAIN) == "一 <b>"
    template.write_text("二 {{ text }}", encoding="utf-8")
    assert rendered(TextFormat.PLAIN) == "二 <b>"
    assert rendered(TextFormat.HTML) == "二 &lt;b&gt;"


def test_render_keeps_unusual_line_separators_in_resident_text() -> None:
    text = "第一段\u2028第二段\u2029第三段\x85完"
    out = render("notify_urgent", case=make_case(text=text), assignee=None, reporter=None)
    assert "第一段\u2028第二段\u2029第三段完" in out  # NEL is a C1 control: dropped


def test_environments_are_cached_per_locale_and_format() -> None:
    renderer = Renderer(TZ)
    first = renderer.render("reply_claim", locale="en", fmt=TextFormat.HTML, case=CLAIMED)
    again = renderer.render("reply_claim", locale="en", fmt=TextFormat.HTML, case=CLAIMED)
    assert first == again
    assert renderer.render("reply_claim", locale="zh-CN", fmt=TextFormat.PLAIN,
                           case=CLAIMED) != first


# -- cli.j2 macros ---------------------------------------------------------------------------------

_MACRO = re.compile(r"\{%-?\s*macro\s+(\w+)\(([^)]*)\)")


def cli_macros(locale: str) -> dict[str, list[str]]:
    source = (DEFAULT_TEMPLATES / locale / "cli.j2").read_text(encoding="utf-8")
    return {name: [a.strip() for a in args.split(",") if a.strip()]
            for name, args in _MACRO.findall(source)}


#: macros that take a list: what they get instead of a word
LIST_ARGS: dict[tuple[str, str], Any] = {
    ("people_groups_line", "groups"): [("<group & co>", 12, "<owner & co>")],
    ("people_groups_unbound", "groups"): ["<group & co>", "<other & co>"],
}


def macro_args(params: list[str], private: bool, macro: str = "") -> dict[str, Any]:
    return {p: private if p == "private" else LIST_ARGS.get((macro, p), f"<{p} & co>")
            for p in params}


def _shown(value: Any, text: str) -> bool:
    """Whether a macro's argument (or every word in a list argument) is in its text."""
    if isinstance(value, (list, tuple)):
        return all(_shown(v, text) for v in value if isinstance(v, (str, list, tuple)))
    return isinstance(value, str) and value in text


def test_cli_macros_are_the_same_in_both_locales() -> None:
    zh, en = cli_macros("zh-CN"), cli_macros("en")
    assert zh == en
    assert {"said", "banner", "link_code", "config_error", "interactive_help"} <= set(zh)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("macro", sorted(cli_macros("zh-CN")))
@pytest.mark.parametrize("private", [True, False])
def test_cli_macros_render(macro: str, locale: str, private: bool) -> None:
    params = cli_macros(locale)[macro]
    kwargs = macro_args(params, private, macro)
    text = RENDERER.text(macro, locale=locale, **kwargs)
    assert text.strip()
    for marker in ("{{", "{%", "}}", "%}"):
        assert marker not in text
    assert "&lt;" not in text and "&amp;" not in text  # the command line is plain text
    used = [v for p, v in kwargs.items() if p != "private" and _shown(v, text)]
    if params and params != ["private"]:
        assert used, (macro, text)


def test_cli_said_shows_where_and_who() -> None:
    group = RENDERER.text("said", locale="zh-CN", time="09:30", name="刘奶奶", where="群「一号」",
                          text="报事 灯坏了", private=False)
    assert group == "[09:30] 刘奶奶 在群「一号」说：报事 灯坏了"
    private = RENDERER.text("said", locale="en", time="09:30", name="Liu", where="x",
                            text="/status", private=True)
    assert private == "[09:30] Liu to the bot in private: /status"


def test_cli_text_defaults_to_the_default_locale() -> None:
    assert RENDERER.text("config_error", message="x") == \
        RENDERER.text("config_error", locale="zh-CN", message="x")
    assert RENDERER.text("config_error", locale="fr", message="x") == "配置有误：x"
    assert RENDERER.text("config_error", locale="en", message="x") == "Configuration error: x"


def test_cli_macro_with_a_name_argument() -> None:
    # Renderer.text takes the macro name positionally, so ``name=`` reaches the macro.
    assert "张阿姨" in RENDERER.text("no_person", locale="zh-CN", name="张阿姨")
    assert "张阿姨" in RENDERER.text("private_label", locale="en", name="张阿姨")


# -- property ------------------------------------------------------------------------------------


def _assignee_context(text: str) -> dict[str, Any]:
    return {"case": make_case(text=text), "event": "reported", "reason": "",
            "route": "on_duty", "reporter": RESIDENT, "actor": RESIDENT, "previous": None}


@settings(max_examples=200, deadline=None)
@given(text=st.text(), locale=st.sampled_from(LOCALES))
def test_resident_text_in_notify_assignee(text: str, locale: str) -> None:
    html = render("notify_assignee", locale, TextFormat.HTML, **_assignee_context(text))
    plain = render("notify_assignee", locale, TextFormat.PLAIN, **_assignee_context(text))
    assert "<" not in html
    assert ">" not in html
    # The renderer drops control characters, trims each line's end and collapses runs of
    # blank lines; apart from that every line the resident typed arrives as typed (HTML:
    # escaped once).
    assert not CONTROL.search(plain) and not CONTROL.search(html)
    for line in CONTROL.sub("", text.replace("\r", "")).split("\n"):
        assert line.rstrip() in plain
        assert str(escape(line.rstrip())) in html
    for out in (html, plain):
        assert all(line == line.rstrip() for line in out.split("\n"))


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs")),
                    min_size=1))
def test_resident_text_without_whitespace_arrives_exactly(text: str) -> None:
    # Exactly as typed, less the invisible controls and bidi marks (U+2066 and the like,
    # category Cf) that the renderer strips from every message.
    shown = CONTROL.sub("", text)
    plain = render("notify_assignee", "zh-CN", TextFormat.PLAIN, **_assignee_context(text))
    # (an empty line loses its trailing space, as every line does)
    assert f"内容：{shown}".rstrip() + "\n" in plain
    html = render("notify_assignee", "en", TextFormat.HTML, **_assignee_context(text))
    assert f"Report: {escape(shown)}".rstrip() + "\n" in html
