"""``/metrics`` of a running bot on the fake Bot API: after a scripted story its figures are
the database's; with Telegram gone, the outbox's age grows and the alert rules shipped in
deploy/prometheus/ fire, evaluated here against the scraped figures; the Grafana
dashboard asks only for metrics the bot exports."""

from __future__ import annotations

import json
import operator
import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gridbot.domain import Status
from tests.fake_telegram import FakeTelegram
from tests.telegram_harness import CHEN, GROUP_ID, LIU, ZHANG, World, bound, start_world

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "gridbot-alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "gridbot.json"
ALLOWED = '\n[metrics]\nallow = ["127.0.0.1"]\n'

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after:telegram.warnings.PTBDeprecationWarning")

Samples = dict[str, list[tuple[dict[str, str], float]]]


async def scrape(w: World, headers: dict[str, str] | None = None) -> Samples:
    assert w.runtime.http is not None
    async with httpx.AsyncClient() as client:
        answer = await client.get(w.runtime.http.url + "/metrics", headers=headers or {})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    found: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    matching = [v for found, v in samples.get(name, [])
                if all(found.get(k) == want for k, want in labels.items())]
    assert len(matching) == 1, (name, labels, samples.get(name))
    return matching[0]


def rules() -> dict[str, str]:
    """alert name -> expression, read from the shipped rule file."""
    text = RULES.read_text(encoding="utf-8")
    return dict(re.findall(r"- alert: (\w+)\n(?:\s+#.*\n)*\s+expr: (.+)", text))


_EXPR = re.compile(r"^(\w+)(?:\{(.*)\})?\s*(>|<|==|>=)\s*([\d.]+)$")
_OPS = {">": operator.gt, "<": operator.lt, "==": operator.eq, ">=": operator.ge}


def firing(expression: str, samples: Samples) -> list[dict[str, str]]:
    """The series for which ``METRIC{label="v"} OP NUMBER`` holds (what Prometheus would
    return for the expression, before its ``for:``)."""
    match = _EXPR.match(expression.strip())
    assert match, f"not a simple comparison: {expression}"
    name, selector, op, threshold = match.groups()
    wanted = dict(re.findall(r'(\w+)="([^"]*)"', selector or ""))
    return [labels for labels, v in samples.get(name, [])
            if all(labels.get(k) == want for k, want in wanted.items())
            and _OPS[op](v, float(threshold))]


async def test_the_figures_after_a_story_are_the_databases(database: Path,
                                                            telegram: FakeTelegram) -> None:
    w = await start_world(database.parent, telegram, "polling", extra=ALLOWED)
    try:
        await bound(w)
        await w.said(w.group, LIU, "报事 3幢楼道灯坏了，晚上很黑")
        await w.said(w.group, CHEN, "报事 车棚漏雨")
        await w.said(w.bot.private(ZHANG), ZHANG, "/claim 1")
        case, _ = await w.case(1)
        assert case.status is Status.CLAIMED
        w.clock.advance(timedelta(hours=3))  # case 2 is past its claim window (2 h)
        late = await scrape(w)  # before the sweep has taken the steps now due
        await w.runtime.worker.run_due()
        await w.settled(0)
        found = await scrape(w)
    finally:
        await w.runtime.stop()

    assert value(found, "gridbot_database_up") == 1
    assert value(late, "gridbot_deadline_sweep_lag_seconds") >= 3600
    assert firing(rules()["GridbotSweepLagging"], late) == [{}]
    assert value(found, "gridbot_deadline_sweep_lag_seconds") == 0
    by_state = {(s, str(level), m): n for s, level, m, n in w.rows(
        "SELECT status, level, microgrid, COUNT(*) FROM cases GROUP BY 1, 2, 3")}
    assert by_state and {(lab["state"], lab["level"], lab["microgrid"]): v
                         for lab, v in found["gridbot_cases"]} == by_state
    assert value(late, "gridbot_cases_overdue") == 1  # case 2, never claimed …
    assert value(found, "gridbot_cases_overdue") == 0  # … climbed a level, a new window
    created = w.rows("SELECT created_at FROM cases WHERE number = 2")[0][0]
    assert created and value(found, "gridbot_oldest_unclaimed_age_seconds") >= 3 * 3600
    sent = w.rows("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")[0][0]
    assert sent > 0
    assert value(found, "gridbot_sends_total", platform="telegram", outcome="sent") == sent
    queued = w.rows("SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending')")[0][0]
    assert value(found, "gridbot_outbox_depth", platform="telegram") == queued
    handled = w.rows("SELECT COUNT(*) FROM inbox")[0][0]
    counts = {lab["command"]: v for lab, v in found["gridbot_handler_seconds_count"]}
    assert sum(counts.values()) == handled
    assert counts.get("claim") == 1 and counts.get("link") == 2
    assert value(found, "gridbot_duty_held", duty="send:telegram") == 1
    assert value(found, "gridbot_platform_up", platform="telegram", state="up") == 1
    assert not any(firing(expr, found) for expr in rules().values())


async def test_with_telegram_gone_the_outbox_ages_and_the_alerts_fire(
        database: Path, telegram: FakeTelegram) -> None:
    w = await start_world(database.parent, telegram, "polling", extra=ALLOWED)
    try:
        await bound(w)
        await w.by_hand()  # the test sends, so nothing leaves behind its back
        message = w.bot.say(w.group, LIU, "报事 消防通道被电瓶车堵了")
        await w.handled(GROUP_ID, message["message_id"])
        before = await scrape(w)
        await telegram.stop()
        await w.drained()  # Telegram does not answer: the platform is held as down
        w.clock.advance(timedelta(minutes=20))
        await w.drained()
        after = await scrape(w)
        await telegram.start()  # back, so that stopping the bot does not wait for it
    finally:
        await w.runtime.stop()

    assert value(before, "gridbot_outbox_depth", platform="telegram") >= 2
    assert value(before, "gridbot_outbox_oldest_age_seconds", platform="telegram") < 60
    age = value(after, "gridbot_outbox_oldest_age_seconds", platform="telegram")
    assert age >= 20 * 60
    assert value(after, "gridbot_outbox_depth", platform="telegram") \
        == value(before, "gridbot_outbox_depth", platform="telegram")
    assert value(after, "gridbot_platform_up", platform="telegram", state="down") == 0
    assert value(after, "gridbot_platform_pauses_total", platform="telegram", kind="down") == 1
    assert value(after, "gridbot_sends_total", platform="telegram", outcome="down") >= 1
    alerts = rules()
    assert firing(alerts["GridbotOutboxStuck"], after) == [{"platform": "telegram"}]
    assert firing(alerts["GridbotPlatformDown"], after) == [
        {"platform": "telegram", "state": "down"}]
    assert not firing(alerts["GridbotOutboxStuck"], before)
    assert not firing(alerts["GridbotDatabaseUnreachable"], after)


async def test_metrics_need_the_token_or_an_allowed_address(
        database: Path, telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_METRICS_TOKEN", "scrape-me-0123456789")
    w = await start_world(database.parent, telegram, "polling",
                          extra='\n[metrics]\ntoken = "env:GRIDBOT_METRICS_TOKEN"\n'
                                'allow = ["10.9.8.0/24"]\n')
    try:
        assert w.runtime.http is not None
        url = w.runtime.http.url + "/metrics"
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).status_code == 403
            wrong = await client.get(url, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 403
        found = await scrape(w, {"Authorization": "Bearer scrape-me-0123456789"})
        assert value(found, "gridbot_database_up") == 1
    finally:
        await w.runtime.stop()


async def test_metrics_are_off_unless_configured(database: Path,
                                                 telegram: FakeTelegram) -> None:
    w = await start_world(database.parent, telegram, "polling")
    try:
        assert w.runtime.http is not None and w.runtime.metrics is None
        async with httpx.AsyncClient() as client:
            assert (await client.get(w.runtime.http.url + "/metrics")).status_code == 404
    finally:
        await w.runtime.stop()


def test_the_dashboard_and_the_rules_ask_only_for_exported_metrics() -> None:
    exported = {"gridbot_cases", "gridbot_cases_overdue", "gridbot_oldest_unclaimed_age_seconds",
                "gridbot_deadline_sweep_lag_seconds", "gridbot_outbox_depth",
                "gridbot_outbox_oldest_age_seconds", "gridbot_notice_deliveries",
                "gridbot_database_up", "gridbot_platform_up", "gridbot_duty_held",
                "gridbot_sends_total", "gridbot_platform_pauses_total",
                "gridbot_handler_seconds_bucket"}
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += list(rules().values())
    used = {name for e in exprs for name in re.findall(r"\b(gridbot_\w+)", e)}
    assert used and used <= exported, used - exported
    assert set(rules()) >= {"GridbotOutboxStuck", "GridbotSweepLagging", "GridbotPlatformDown",
                            "GridbotDatabaseUnreachable"}
