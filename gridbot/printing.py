"""What the printed sheets have in common (the link cards of :mod:`gridbot.cards`, the
residents' posters of :mod:`gridbot.residents.poster`): Chinese text in the bundled CJK
font, lines cut to a width, and a QR code drawn module by module.

The font is Noto Sans CJK SC from the mplfonts wheel (:func:`gridbot.charts.bundled_font`),
so Chinese prints on a fresh server with pip alone. The QR code is made by segno (a
maintained, dependency-free encoder) at a whole number of pixels per module, so that it
stays sharp when pasted and scans from paper.
"""

from __future__ import annotations

import io
import logging
from functools import cache

import segno
from PIL import Image, ImageDraw, ImageFont

from gridbot.charts import bundled_font

log = logging.getLogger(__name__)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
#: the quiet zone around a QR code, in modules (the standard's four)
QR_BORDER = 4


@cache
def _font_file() -> str | None:
    path = bundled_font()
    if path is None:
        log.warning("no CJK font found for printing: Chinese may not print "
                    "(pip install mplfonts)")
    return str(path) if path else None


def font(size: int) -> Font:
    """The CJK font at ``size`` pixels (Pillow's own font where it is missing)."""
    path = _font_file()
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size)


def wrap(draw: ImageDraw.ImageDraw, text: str, face: Font, width: int) -> list[str]:
    """``text`` cut into lines no wider than ``width`` (Chinese has no spaces to cut at,
    so any character may end a line; a Latin word stays whole where it can)."""
    lines: list[str] = []
    line = ""
    for word in _pieces(text):
        if draw.textlength(line + word, font=face) <= width or not line:
            line += word
            continue
        lines.append(line.rstrip())
        line = word.lstrip()
    if line:
        lines.append(line.rstrip())
    return lines


def _pieces(text: str) -> list[str]:
    """Latin words (with the space before them) and single CJK characters."""
    pieces: list[str] = []
    for ch in text:
        if pieces and ch.isascii() and not ch.isspace() and pieces[-1][-1:].isascii() \
                and not pieces[-1].endswith(" "):
            pieces[-1] += ch
        else:
            pieces.append(ch)
    return pieces


def qr_code(text: str) -> segno.QRCode:
    """``text`` as a QR code (error correction M at least, raised where it fits)."""
    return segno.make(text, error="m", micro=False)


def qr_png(text: str, *, scale: int = 14) -> bytes:
    """``text`` as a QR code, as PNG bytes, ``scale`` pixels a module."""
    buffer = io.BytesIO()
    qr_code(text).save(buffer, kind="png", scale=scale, border=QR_BORDER)
    return buffer.getvalue()


def qr_image(text: str, most: int) -> Image.Image:
    """``text`` as a QR code at most ``most`` pixels wide, a whole number of pixels a
    module (sharp edges, as a phone's camera wants them)."""
    modules = int(qr_code(text).symbol_size(scale=1, border=QR_BORDER)[0])
    scale = max(1, most // modules)
    return Image.open(io.BytesIO(qr_png(text, scale=scale))).convert("RGB")
