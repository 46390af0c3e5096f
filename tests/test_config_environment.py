"""Settings from the environment: ``GRIDBOT_SECTION__KEY`` wins over the file, is read as
the key's type, and is checked (and shown, by name only) like the file's own values."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gridbot.config import load_config, parse_config
from gridbot.errors import ConfigError
from tests.test_config import EXAMPLE_TEXT, MINIMAL, edit

TELEGRAM = '\n[telegram]\ntoken = "123:from-the-file"\n'


def problems(text: str, environ: dict[str, str], **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, environ=environ, locale="en", **kwargs)  # type: ignore[arg-type]
    return [p.text for p in raised.value.problems]


def test_an_override_wins_over_the_file() -> None:
    config = parse_config(EXAMPLE_TEXT + TELEGRAM,
                          environ={"GRIDBOT_TELEGRAM__TOKEN": "456:from-the-environment"})
    assert config.telegram is not None
    assert config.telegram.token.get_secret_value() == "456:from-the-environment"
    assert parse_config(EXAMPLE_TEXT + TELEGRAM, environ={}).telegram.token \
        .get_secret_value() == "123:from-the-file"


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_GRIDBOT__BOT_NAME", "幸福里小助手")
    assert parse_config(EXAMPLE_TEXT).bot_name == "幸福里小助手"


def test_an_override_may_bring_a_whole_section() -> None:
    config = parse_config(EXAMPLE_TEXT, environ={"GRIDBOT_TELEGRAM__TOKEN": "7:x"})
    assert config.telegram is not None and config.telegram.mode == "polling"


def test_an_override_can_switch_a_platform_off() -> None:
    config = parse_config(EXAMPLE_TEXT + TELEGRAM, environ={"GRIDBOT_TELEGRAM__ENABLED": "false"})
    assert config.telegram is None


def test_a_storage_url_from_the_environment_is_relative_to_the_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    path = tmp_path / "gridbot.toml"
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    monkeypatch.setenv("GRIDBOT_STORAGE__URL", "sqlite:///data/city.db")
    assert load_config(path).storage_url == f"sqlite:///{tmp_path / 'data' / 'city.db'}"
    monkeypatch.setenv("GRIDBOT_STORAGE__URL", "postgresql://bot:pw@db.example.org/city")
    assert load_config(path).storage_url == "postgresql://bot:pw@db.example.org/city"


def test_values_that_are_not_text_are_read_as_toml() -> None:
    config = parse_config(EXAMPLE_TEXT, environ={
        "GRIDBOT_HTTP__PORT": "8443",
        "GRIDBOT_CALENDAR__WORK_DAYS": '["mon", "tue"]',
        "GRIDBOT_CALENDAR__PAUSE_IN_QUIET": "false",
        "GRIDBOT_ESCALATION__IDLE_REMIND_AFTER": "off",
        "GRIDBOT_ESCALATION__REMIND_AT": "[0.5, 0.9]",
        "GRIDBOT_POLICY__WINDOWS__URGENT__CLAIM_WITHIN": "10m",
        "GRIDBOT_POLICY__EMERGENCY_NUMBERS": '{ fire = "119", gas = "96777" }',
    })
    assert config.http.port == 8443
    assert config.calendar.work_days == (0, 1) and config.calendar.pause_in_quiet is False
    assert config.escalation.idle_remind_after is None
    assert config.escalation.remind_at == (0.5, 0.9)
    assert config.policy.windows[next(iter(config.policy.windows))].claim_within == \
        timedelta(minutes=10)
    assert config.policy.emergency_numbers == (("fire", "119"), ("gas", "96777"))


def test_text_stays_text_even_when_it_looks_like_a_number() -> None:
    config = parse_config(EXAMPLE_TEXT + TELEGRAM, environ={
        "GRIDBOT_TELEGRAM__TOKEN": "1234567890", "GRIDBOT_GRIDBOT__BOT_NAME": "true"})
    assert config.telegram.token.get_secret_value() == "1234567890"
    assert config.bot_name == "true"


def test_an_overrides_value_is_not_itself_a_reference() -> None:
    config = parse_config(EXAMPLE_TEXT, environ={"GRIDBOT_GRIDBOT__BOT_NAME": "env:OTHER"})
    assert config.bot_name == "env:OTHER"


def test_map_keys_keep_the_files_case() -> None:
    text = EXAMPLE_TEXT + '\n[wechat.robots]\nM01 = "key-from-file"\n'
    config = parse_config(text, environ={"GRIDBOT_WECHAT__ROBOTS__M01": "key-from-env",
                                         "GRIDBOT_WECHAT__ROBOTS__M02": "key-two"})
    assert config.wecom_robots == {"M01": "key-from-env", "M02": "key-two"}
    config = parse_config(text, environ={"GRIDBOT_WECHAT__ROBOTS__m01": "lower"})
    assert config.wecom_robots == {"M01": "lower"}


def test_a_misspelt_override_is_an_error_naming_the_variable() -> None:
    found = problems(EXAMPLE_TEXT + TELEGRAM, {"GRIDBOT_TELEGRAM__TOKN": "s3cret-token"})
    assert found == ["<config>: telegram.tokn = 'env:GRIDBOT_TELEGRAM__TOKN': expected no such "
                     "key here (did you mean 'token'?); known keys: enabled, token, base_url, "
                     "base_file_url, mode, webhook_url, webhook_secret (in environment variable "
                     "GRIDBOT_TELEGRAM__TOKN; not shown)"]


def test_a_bad_override_names_the_variable_and_never_its_value() -> None:
    found = problems(EXAMPLE_TEXT, {"GRIDBOT_HTTP__PORT": "eighty",
                                    "GRIDBOT_LIMITS__MAX_TEXT_CHARS": "50"})
    assert found == [
        "<config>: limits.max_text_chars = 'env:GRIDBOT_LIMITS__MAX_TEXT_CHARS': expected a whole "
        "number from 100 to 20000 (in environment variable GRIDBOT_LIMITS__MAX_TEXT_CHARS; not "
        "shown)",
        "<config>: http.port = 'env:GRIDBOT_HTTP__PORT': expected a whole number from 0 to 65535 "
        "(in environment variable GRIDBOT_HTTP__PORT; not shown)",
    ]


def test_arrays_of_tables_cannot_be_overridden() -> None:
    found = problems(EXAMPLE_TEXT, {"GRIDBOT_PEOPLE__0__ROLE": "steward"})
    assert len(found) == 1
    assert found[0].startswith("<config>: people = 'env:GRIDBOT_PEOPLE__0__ROLE'")
    assert "environment variables set keys of tables" in found[0]


def test_other_variables_are_left_alone() -> None:
    environ = {"GRIDBOT_SECRET": "not-an-override", "GRIDBOT_TELEGRAM_TOKEN": "x",
               "GRIDBOT___X": "malformed", "PATH": "/usr/bin"}
    assert parse_config(MINIMAL, environ=environ).telegram is None


def test_overrides_of_platform_secrets_are_read_even_when_references_are_deferred() -> None:
    text = EXAMPLE_TEXT + '\n[telegram]\ntoken = "env:GRIDBOT_UNSET_TOKEN"\n'
    config = parse_config(text, secrets=False, environ={})
    assert config.deferred_secrets == (("telegram.token", "GRIDBOT_UNSET_TOKEN"),)
    config = parse_config(text, secrets=False, environ={"GRIDBOT_TELEGRAM__TOKEN": "9:abc"})
    assert config.deferred_secrets == ()
    assert config.telegram.token.get_secret_value() == "9:abc"


def test_the_language_of_problems_can_come_from_the_environment() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(edit('port = 8080', 'port = "x"'),
                     environ={"GRIDBOT_GRIDBOT__LOCALE": "en"})
    assert str(raised.value) == "<config>: http.port = 'x': expected a whole number from 0 to 65535"
