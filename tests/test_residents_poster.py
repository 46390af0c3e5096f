"""A link and a poster per micro-grid (issue 18, item 1): ``gridbot qr`` prints each
micro-grid's report link and writes a poster whose QR code (read back with zxing-cpp, as a
phone would) is that link; ``--rotate`` replaces it, so the old posters are refused as
replaced; and the console's People page shows the links, serves the posters to those who
look after the micro-grid and replaces a link from the page, audited."""

from __future__ import annotations

import argparse
import dataclasses
import io
import re
from pathlib import Path

import zxingcpp
from PIL import Image

from gridbot.cli import web as web_cli
from gridbot.cli.session import Session
from gridbot.config import Config
from gridbot.render import Renderer
from gridbot.residents import links
from gridbot.residents.poster import HEIGHT, WIDTH, draw_poster, poster_for
from tests.telegram_harness import ZHANG, ZHOU, World, bound
from tests.test_console import csrf_of, logged_in

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "docs" / "img" / "report-poster.png"
SAMPLE_LINK = "https://grid.example.org/r/M01/1.5e2c0d9a41b7f3068c1d"


def qr_args(out: Path, *codes: str, **given: object) -> argparse.Namespace:
    return argparse.Namespace(**{"microgrids": list(codes), "all": False, "out": str(out),
                                 "rotate": False, **given})


async def qr(config: Config, args: argparse.Namespace) -> tuple[int, str, str]:
    """``gridbot qr``: its exit code, what it printed and what it complained."""
    out, err = io.StringIO(), io.StringIO()
    async with Session(config=config, renderer=Renderer(config.timezone), out=out,
                       err=err) as session:
        code = await web_cli.qr(session, args)
    return code, out.getvalue(), err.getvalue()


def decode(png: Path | bytes) -> list[str]:
    image = Image.open(io.BytesIO(png) if isinstance(png, bytes) else png)
    return [found.text for found in zxingcpp.read_barcodes(image)]


async def current_link(w: World, microgrid: str) -> tuple[str, str]:
    """The micro-grid's link as ``gridbot qr`` makes it, and its token."""
    config = w.runtime.config
    assert config.web is not None
    key = links.key_for(config, config.web, lambda: w.runtime.engine.link_key)
    async with w.runtime.store.transaction() as tx:
        url = await links.url(tx, key, links.base_url(config, config.web), microgrid)
    return url, url.rsplit("/", 1)[1]


async def verdict(w: World, microgrid: str, token: str) -> links.Verdict:
    config = w.runtime.config
    assert config.web is not None
    key = links.key_for(config, config.web, lambda: w.runtime.engine.link_key)
    async with w.runtime.store.transaction() as tx:
        return await links.check(tx, key, microgrid, token,
                                 {m.code for m in config.microgrids})


async def test_qr_prints_the_link_and_writes_a_poster_that_scans_to_it(web_world: World,
                                                                      tmp_path: Path) -> None:
    w = web_world
    config = w.runtime.config
    code, printed, _ = await qr(config, qr_args(tmp_path / "posters", "M01", "m02"))
    assert code == 0
    for microgrid in ("M01", "M02"):
        link, _ = await current_link(w, microgrid)
        assert link.endswith(f"/r/{microgrid}/1." + link.rsplit(".", 1)[1])
        assert f"{microgrid} " in printed and link in printed
        poster = tmp_path / "posters" / f"{microgrid}.png"
        assert decode(poster) == [link]  # the printed QR code is the link
        assert Image.open(poster).size == (WIDTH, HEIGHT)
    assert "已生成 2 张海报" in printed
    # the same micro-grid and link always draw the same poster
    m01 = config.microgrid("M01")
    assert m01 is not None
    link, _ = await current_link(w, "M01")
    drawn = draw_poster(poster_for(config, Renderer(config.timezone), m01, link))
    assert drawn == (tmp_path / "posters" / "M01.png").read_bytes()
    assert "1-3幢" in m01.name  # the name on the poster is the group's


async def test_rotating_refuses_the_old_posters_as_replaced(web_world: World,
                                                            tmp_path: Path) -> None:
    w = web_world
    config = w.runtime.config
    old, old_token = await current_link(w, "M01")
    assert await verdict(w, "M01", old_token) is links.Verdict.GOOD
    code, printed, _ = await qr(config, qr_args(tmp_path, "M01", rotate=True))
    assert code == 0
    new, new_token = await current_link(w, "M01")
    assert new != old and new in printed and new_token.startswith("2.")
    assert "旧海报和旧链接从现在起失效" in printed
    assert decode(tmp_path / "M01.png") == [new]
    assert await verdict(w, "M01", old_token) is links.Verdict.REPLACED
    assert await verdict(w, "M01", new_token) is links.Verdict.GOOD
    # M01's signature does not open M02
    assert await verdict(w, "M02", new_token) is links.Verdict.FORGED
    assert w.rows("SELECT actor_id, via, action, target, summary FROM audit_log "
                  "WHERE action = 'rotate_link'") == [("", "cli", "rotate_link", "M01",
                                                       "1 -> 2")]


async def test_qr_answers_an_unknown_code_and_a_missing_residents_page(
        web_world: World, tmp_path: Path) -> None:
    config = web_world.runtime.config
    code, printed, said = await qr(config, qr_args(tmp_path / "out", "M01", "M99"))
    assert code == 1 and printed == ""
    assert "没有编码为「M99」的微网格" in said and "M01 M02 M03 M04" in said
    assert not (tmp_path / "out").exists()  # nothing written for the known one either
    assert config.web is not None
    off = dataclasses.replace(config, web=config.web.model_copy(update={"residents": False}))
    code, _, said = await qr(off, qr_args(tmp_path, "M01"))
    assert code == 2 and "residents = false" in said
    code, _, said = await qr(dataclasses.replace(config, web=None), qr_args(tmp_path, "M01"))
    assert code == 2 and "没有 [web] 一节" in said


async def test_the_people_page_shows_the_links_and_serves_posters_in_scope(
        web_world: World) -> None:
    w = await bound(web_world)
    base = w.runtime.console.base if w.runtime.console else ""
    steward = await logged_in(w, ZHANG)
    staff = await logged_in(w, ZHOU)
    try:
        page = await steward.get(base + "/people")
        assert page.status_code == 200
        shown = dict(re.findall(r'<tr data-report-link="([^"]+)" data-generation="1">\s*'
                                r'<th scope="row">[^<]*</th>\s*<td><a class="link" '
                                r'href="([^"]+)"', page.text))
        # 张阿姨 looks after M01 and backs up M02: their links, and no one else's
        assert set(shown) == {"M01", "M02"}
        _, token = await current_link(w, "M01")
        assert shown["M01"].endswith(f"/r/M01/{token}")
        assert shown["M01"].startswith(base.removesuffix("/console"))

        poster = await steward.get(base + "/people/poster/M01")
        assert poster.status_code == 200
        assert poster.headers["content-type"] == "image/png"
        assert decode(poster.content) == [shown["M01"]]
        refused = await steward.get(base + "/people/poster/M03")  # 赵's, not hers
        assert refused.status_code == 403 and "image" not in refused.headers["content-type"]
        assert (await steward.get(base + "/people/poster/M99")).status_code == 403
        assert (await staff.get(base + "/people/poster/M03")).status_code == 200  # C01's

        # replacing asks to confirm first; then the old link is refused as replaced
        unconfirmed = await steward.post(base + "/people/rotate", data={
            "csrf": csrf_of(page.text), "microgrid": "M01"})
        assert unconfirmed.status_code == 303
        assert await verdict(w, "M01", token) is links.Verdict.GOOD
        rotated = await steward.post(base + "/people/rotate", data={
            "csrf": csrf_of(page.text), "microgrid": "M01", "confirm": "yes"})
        assert rotated.status_code == 303
        assert rotated.headers["location"].endswith("/people?rotated=M01#report-links")
        assert await verdict(w, "M01", token) is links.Verdict.REPLACED
        after = await steward.get(base + rotated.headers["location"]
                                  .removeprefix("/console").split("#")[0])
        assert 'data-rotated="M01"' in after.text and "旧海报和旧链接已失效" in after.text
        assert '<tr data-report-link="M01" data-generation="2">' in after.text
        outside = await steward.post(base + "/people/rotate", data={
            "csrf": csrf_of(page.text), "microgrid": "M03", "confirm": "yes"})
        assert outside.status_code == 403
        forged = await steward.post(base + "/people/rotate", data={
            "csrf": "x" * 40, "microgrid": "M02", "confirm": "yes"})
        assert forged.status_code == 403
        assert w.rows("SELECT actor_id, via, target, summary FROM audit_log "
                      "WHERE action = 'rotate_link'") == [("zhang", "web", "M01", "1 -> 2")]
    finally:
        await steward.aclose()
        await staff.aclose()


def test_the_sample_poster_in_the_docs_scans() -> None:
    """docs/img/report-poster.png (the README's picture) is a poster as ``gridbot qr``
    draws it, for the demo org's M01 at an example address (``python -m
    tests.test_residents_poster`` draws it again)."""
    sample = Image.open(SAMPLE)
    assert sample.size == (WIDTH, HEIGHT)
    assert decode(SAMPLE) == [SAMPLE_LINK]


def sample_poster() -> bytes:
    from gridbot.cli.session import demo_config_path
    from gridbot.config import load_config

    config = load_config(demo_config_path(), secrets=False)
    microgrid = config.microgrid("M01")
    assert microgrid is not None
    return draw_poster(poster_for(config, Renderer(config.timezone), microgrid, SAMPLE_LINK))


if __name__ == "__main__":
    SAMPLE.write_bytes(sample_poster())
