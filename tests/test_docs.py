"""The documents hold together: every link in README.md, README.en.md, docs/ and deploy/
leads to a file that exists (and to a heading that exists, when it names one), the
Chinese README stays short and links each audience's document, and the blocks that the
tests and CI run are the same wherever they are written."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCS = sorted([ROOT / "README.md", ROOT / "README.en.md", ROOT / "BENCHMARKS.md",
               *(ROOT / "docs").rglob("*.md"), *(ROOT / "deploy").rglob("*.md")])
#: each audience's document, as README.md lists them (issue 21)
AUDIENCES = ("docs/zh/usage.md", "docs/zh/office.md", "docs/zh/deploy.md",
             "docs/zh/configuration.md", "docs/zh/platforms.md", "docs/zh/internals.md")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def visible(path: Path) -> str:
    """The Markdown a reader sees: no HTML comments, no code blocks."""
    return _FENCE.sub("", _COMMENT.sub("", path.read_text(encoding="utf-8")))


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the file's headings: lower case, punctuation dropped,
    spaces as hyphens; a repeated heading gets -1, -2, …"""
    seen: dict[str, int] = {}
    found = set()
    for line in visible(path).splitlines():
        if not (heading := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            continue
        text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading[1]).strip().lower()
        slug = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
        slug = slug.replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(path: Path) -> list[str]:
    return [m[1] for m in _LINK.finditer(visible(path))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_to_a_file_and_heading_that_exist(doc: Path) -> None:
    for target in links(doc):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto: — outside the repository
        file, _, anchor = target.partition("#")
        where = (doc.parent / file).resolve() if file else doc
        assert where.exists(), (doc.name, target)
        assert where.is_relative_to(ROOT), (doc.name, target)
        if anchor and where.suffix == ".md":
            assert anchor in anchors(where), (doc.name, target, sorted(anchors(where)))


def test_the_chinese_readme_is_short_and_leads_to_each_audience() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 150
    prose = [line for line in visible(readme).splitlines()
             if line.strip() and not line.startswith(("|", "`", "!", "<"))]
    chinese = [line for line in prose if re.search(r"[\u4e00-\u9fff]", line)]
    assert len(chinese) >= 0.9 * len(prose)
    linked = {str((readme.parent / t.partition("#")[0]).resolve().relative_to(ROOT))
              for t in links(readme) if not re.match(r"[a-z]+:", t)}
    assert set(AUDIENCES) | {"README.en.md", "docs/configuration.md"} <= linked
    assert any(t.endswith(".png") for t in links(readme))  # a picture


def test_each_audience_document_has_a_chinese_title() -> None:
    for name in AUDIENCES:
        first = (ROOT / name).read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# ") and re.search(r"[\u4e00-\u9fff]", first), name


def blocks(marker: str) -> dict[str, str]:
    """The text between ``<!-- marker -->`` and ``<!-- /marker -->`` in each document."""
    found = {}
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        if f"<!-- {marker} -->" in text:
            found[doc.name] = text.split(f"<!-- {marker} -->", 1)[1].split(
                f"<!-- /{marker} -->", 1)[0]
    return found


def test_the_test_command_is_the_readmes_for_ci() -> None:
    found = blocks("test-command")
    assert list(found) == ["README.md"] or set(found.values()) == {found["README.md"]}
    assert found["README.md"].strip() == (
        "```\npython3 -m venv .venv && .venv/bin/pip install -e '.[test]' && "
        ".venv/bin/python -m pytest\n```")


def test_the_quick_start_demo_command_is_the_same_in_both_readmes() -> None:
    demo = ("python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/gridbot demo "
            "--script examples/story_corridor_light.txt")
    for name in ("README.md", "README.en.md"):
        assert f"```\n{demo}\n```" in (ROOT / name).read_text(encoding="utf-8"), name


@pytest.mark.parametrize("marker", ["setup-commands", "import-command"])
def test_a_block_the_tests_run_reads_the_same_wherever_it_is_written(marker: str) -> None:
    found = blocks(marker)
    assert len(found) >= 2 and len(set(found.values())) == 1, found
