"""A micro-grid's report poster: a printable PNG with the group's name, the QR code of its
report link (:mod:`gridbot.residents.links`), two lines of instructions and the link
itself written small, for the steward to pin in the WeChat group and on the notice board.

The words come from the templates (``cli.j2``'s ``poster_*`` macros) in the
configuration's language, the emergency numbers from ``[policy] emergency_numbers``. The
same micro-grid and link always give the same bytes, so a poster printed twice is the same
poster, and a test can compare them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw

from gridbot.config import Config
from gridbot.domain import MicroGrid
from gridbot.printing import font, qr_image, wrap
from gridbot.render import Renderer

#: about A5 portrait at 212 dpi, or A6 at 300 (148 × 210 mm scales to either)
WIDTH, HEIGHT = 1240, 1748
MARGIN = 80
INK, GREY, ACCENT, PAPER = "#1f2328", "#59636e", "#2f6db5", "#ffffff"
#: the group's name: the largest of these sizes that fits in two lines
NAME_SIZES = (128, 108, 92, 76, 64)
#: the instructions: the largest of these sizes that fits each in one line
LINE_SIZES = (44, 40, 36, 32)
#: the QR code's largest side, in pixels
QR_MOST = 1000


@dataclass(frozen=True, kw_only=True)
class Poster:
    """Everything printed on one poster, already in the configuration's language."""

    #: where the micro-grid is ("幸福里社区 · 第一网格")
    place: str
    #: the group's (micro-grid's) name, printed big
    name: str
    heading: str
    #: what the QR code holds, printed small under it
    link: str
    #: the two instructions, one a line
    lines: tuple[str, ...]
    footer: str


def poster_for(config: Config, renderer: Renderer, microgrid: MicroGrid, link: str) -> Poster:
    """The poster of ``microgrid`` whose report link is ``link``."""
    text = renderer.text
    grid = config.grid(microgrid.grid)
    community = config.community(grid.community) if grid else None
    numbers = " / ".join(number for _, number in config.policy.emergency_numbers)
    return Poster(
        place=text("poster_place", subdistrict=config.subdistrict.name,
                   community=community.name if community else "",
                   grid=grid.name if grid else ""),
        name=microgrid.name,
        heading=text("poster_heading"),
        link=link,
        lines=tuple(line for line in text("poster_lines", numbers=numbers).split("\n")
                    if line),
        footer=text("poster_footer", bot=config.bot_name, code=microgrid.code),
    )


@dataclass(frozen=True, kw_only=True)
class _Block:
    """Lines of one size and colour, centred."""

    lines: tuple[str, ...]
    size: int
    fill: str
    gap: int

    @property
    def height(self) -> int:
        return len(self.lines) * (self.size + self.gap)


def draw_poster(poster: Poster) -> bytes:
    """The poster as a PNG (1240 × 1748, portrait)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(image)
    inner = WIDTH - 2 * MARGIN

    def block(text: str, size: int, fill: str, gap: int = 14) -> _Block:
        return _Block(lines=tuple(wrap(draw, text, font(size), inner)), size=size, fill=fill,
                      gap=gap)

    def put(b: _Block, y: int) -> int:
        face = font(b.size)
        for line in b.lines:
            draw.text(((WIDTH - draw.textlength(line, font=face)) / 2, y), line, font=face,
                      fill=b.fill)
            y += b.size + b.gap
        return y

    def fitted(text: str, sizes: tuple[int, ...], lines: int, gap: int) -> _Block:
        """At the largest of ``sizes`` that takes at most ``lines`` lines."""
        return next((b for size in sizes
                     if len((b := block(text, size, INK, gap=gap)).lines) <= lines),
                    block(text, sizes[-1], INK, gap=gap))

    top = [block(poster.place, 40, GREY), fitted(poster.name, NAME_SIZES, 2, 24),
           block(poster.heading, 56, ACCENT)]
    link = block(poster.link, 28, GREY, gap=8)
    size = next((size for size in LINE_SIZES
                 if all(len(block(line, size, INK).lines) == 1 for line in poster.lines)),
                LINE_SIZES[-1])
    bottom = [block(line, size, INK, gap=16) for line in poster.lines]
    footer = block(poster.footer, 30, GREY)

    draw.rectangle((24, 24, WIDTH - 25, HEIGHT - 25), outline=GREY, width=3)
    y = MARGIN
    for b in top:
        y = put(b, y) + 10
    below = link.height + 24 + sum(b.height for b in bottom) + 20 + footer.height
    room = HEIGHT - MARGIN - y - below - 20
    qr = qr_image(poster.link, max(200, min(QR_MOST, room)))
    image.paste(qr, ((WIDTH - qr.width) // 2, y))
    y = put(link, y + qr.height + 4) + 24
    for b in bottom:
        y = put(b, y)
    put(footer, max(y + 20, HEIGHT - MARGIN - footer.height + footer.gap))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(300, 300), optimize=True)
    return buffer.getvalue()
