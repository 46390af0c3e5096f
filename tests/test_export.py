"""``gridbot export --cases``: CSV and JSON for other systems, from the story's day."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest

from gridbot.cli import main
from gridbot.config import load_config
from gridbot.demo import DEFAULT_START, Demo, parse_start
from gridbot.export import FIELDS
from tests.conftest import EXAMPLE_CONFIG, Bot
from tests.stats_story import config_for, play


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The story played once into a database, and a configuration pointing at it."""
    folder = tmp_path_factory.mktemp("export")

    async def make() -> None:
        cfg = load_config(EXAMPLE_CONFIG)
        async with Demo(cfg, folder / "gridbot.db", parse_start(DEFAULT_START, cfg),
                        out=io.StringIO()) as demo:
            await play(Bot(demo=demo, path=folder / "gridbot.db"))

    asyncio.run(make())
    return config_for(folder / "gridbot.db", folder)


def test_csv_for_excel(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cases.csv"
    assert main(["--config", str(config), "export", "--cases", "--since", "2026-11-01",
                 "--until", "2026-11-30", "--out", str(out)]) == 0
    assert capsys.readouterr().err.strip() == (
        f"已导出 2026-11-01 至 2026-11-30 报事的 7 件工单到 {out}。")
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads the Chinese correctly
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(rows[0]) == list(FIELDS)
    assert [r["number"] for r in rows] == ["1", "2", "3", "4", "5", "6", "7"]
    two = rows[1]
    assert (two["microgrid"], two["microgrid_name"], two["grid"], two["community"]) == (
        "M01", "幸福里1-3幢", "G01", "C01")
    assert (two["category"], two["category_name"], two["status"]) == (
        "sanitation", "环境卫生", "closed")
    assert (two["reporter_name"], two["first_claimed_by"], two["resolved_by"]) == (
        "陈先生", "wang", "wang")
    assert two["created_at"] == "2026-11-23T11:00:00+08:00"
    assert two["first_claimed_at"] == "2026-11-23T13:30:00+08:00"
    assert two["resolved_at"] == "2026-11-23T15:00:00+08:00"
    assert (two["rating"], two["rating_text"], two["missed_deadline"], two["escalated"]) == (
        "2", "太慢了", "True", "True")
    assert rows[2]["reopened"] == "1" and rows[3]["status"] == "cancelled"
    assert rows[4]["text"] == "smoke in the stairwell" and rows[4]["resolved_at"] == ""
    for row in rows:  # a resident's phone and address never leave
        assert "137-0000-0301" not in row.values() and "幸福里3幢201" not in row.values()


def test_json_with_every_event(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "cases.json"
    assert main(["--config", str(config), "export", "--since", "2026-11-23", "--scope", "M04",
                 "--until", "2026-11-23", "--out", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert (data["since"], data["until"], data["scope"]) == ("2026-11-23", "2026-11-23", "M04")
    [five] = data["cases"]
    assert (five["number"], five["priority"], five["level"], five["assignee_name"]) == (
        5, "urgent", 3, "郑科长")
    kinds = [e["kind"] for e in five["events"]]
    assert kinds[:2] == ["reported", "assigned"]
    assert kinds.count("escalated") == 3 and "overdue" in kinds
    escalation = next(e for e in five["events"] if e["kind"] == "escalated")
    assert escalation["data"]["why"] == "claim_missed" and escalation["actor_id"] == ""
    assert five["events"][0]["actor_name"] == "Tom"


def test_to_standard_output_and_filters(config: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "export", "--since", "2026-11-24",
                 "--until", "2026-11-30"]) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == ",".join(FIELDS)  # the header, and nothing later was reported
    assert printed.err == ""
    assert main(["--config", str(config), "export", "--since", "2026-11-01",
                 "--until", "2026-11-30", "--scope", "c02", "--format", "json"]) == 0
    assert [c["number"] for c in json.loads(capsys.readouterr().out)["cases"]] == [5]


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "yesterday"], "参数有误：--since「yesterday」：应为日期，例如 2026-10-01"),
    (["--since", "2026-11-02", "--until", "2026-11-01"], "--until「2026-11-01」：不能早于"),
    (["--since", "2026-11-01", "--scope", "X9"], "--scope「X9」"),
    (["--since", "2026-11-01", "--out", "/no/such/folder/x.csv"], "--out「/no/such/folder"),
])
def test_mistakes(config: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                  message: str) -> None:
    assert main(["--config", str(config), "export", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
