"""Printable link cards: a person's one-time code, its Telegram link as a QR code, and the
words to send on WeChat, as a PNG; and the sheet that lists them all.

A steward prints the cards and hands them out; whoever scans the QR code with a phone
opens Telegram at ``https://t.me/<bot>?start=<code>``, presses *Start*, and the bot
receives ``/start CODE`` in private, which links the account at once.

The QR code is made by segno and the card is drawn with Pillow in the CJK font the
report's charts use (:mod:`gridbot.printing`), so Chinese names print on a fresh server.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageDraw

from gridbot.config import Config
from gridbot.domain import Person, Role
from gridbot.printing import font, qr_png, wrap
from gridbot.render import Renderer

#: A6 portrait at 300 dpi (105 × 148 mm): four to an A4 page
WIDTH, HEIGHT = 1240, 1748
MARGIN = 80
INK, GREY, ACCENT, PAPER = "#1f2328", "#59636e", "#2f6db5", "#ffffff"


@dataclass(frozen=True, kw_only=True)
class LinkCard:
    """Everything printed on one card, already in the person's language."""

    title: str
    name: str
    subtitle: str
    code_label: str
    code: str
    #: the Telegram deep link the QR code holds; "" without Telegram
    link: str
    qr_caption: str
    #: what to do on the other platforms, one instruction a line
    lines: tuple[str, ...]
    footer: str
    # for the sheet
    role: str = ""
    unit: str = ""
    person_id: str = ""
    expires: str = ""
    #: the message to send by hand ("认证 ABCD-EFGH")
    send: str = ""


def card_for(config: Config, renderer: Renderer, person: Person, code: str, expires: datetime,
          bot: str | None) -> LinkCard:
    """The card of ``person`` with a code just issued, in their language (``bot``: the
    Telegram bot's username, for the link and its QR code)."""
    text = renderer.text
    locale = renderer.locale_for(person.locale)
    unit = (config.microgrid(person.unit) or config.grid(person.unit)
            or config.community(person.unit))
    unit_name = unit.name if unit else config.subdistrict.name
    link = telegram_link(bot, code) if bot else ""
    # WeChat as the design has it: staff on the WeCom app, residents on the Official Account
    resident = person.role is Role.RESIDENT
    wecom = config.wecom is not None and not resident
    mp = config.official_account is not None and resident
    return LinkCard(
        title=text("card_title", locale=locale, bot=config.bot_name, place=unit_name),
        name=person.name,
        subtitle=text("card_subtitle", locale=locale, role=person.role.value, unit=unit_name),
        code_label=text("card_code_label", locale=locale),
        code=code,
        link=link,
        qr_caption=text("card_qr_caption", locale=locale) if link else "",
        lines=tuple(line for line in text(
            "card_lines", locale=locale, code=code, bot=config.bot_name, telegram=bool(link),
            wecom=wecom, mp=mp, other=not (link or wecom or mp)).split("\n") if line),
        footer=text("card_footer", locale=locale,
                    expires=expires.astimezone(config.timezone).strftime("%Y-%m-%d %H:%M")),
        role=text("role_name", locale=locale, role=person.role.value),
        unit=person.unit,
        person_id=person.id,
        expires=expires.astimezone(config.timezone).strftime("%Y-%m-%d %H:%M"),
        send=text("card_send", locale=locale, code=code),
    )


def telegram_link(bot: str, code: str) -> str:
    """The link that opens a private chat with ``bot`` and sends ``/start CODE``.

    Telegram allows A-Z, a-z, 0-9, ``_`` and ``-`` in the parameter: a code is made of
    those (``ABCD-EFGH``)."""
    return f"https://t.me/{bot}?start={code}"


def draw_card(card: LinkCard) -> bytes:
    """The card as a PNG (300 dpi, A6 portrait)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(image)
    inner = WIDTH - 2 * MARGIN
    y = MARGIN
    draw.rectangle((24, 24, WIDTH - 25, HEIGHT - 25), outline=GREY, width=3)

    def centred(text: str, size: int, fill: str, gap: int = 14) -> None:
        nonlocal y
        face = font(size)
        for line in wrap(draw, text, face, inner):
            length = draw.textlength(line, font=face)
            draw.text(((WIDTH - length) / 2, y), line, font=face, fill=fill)
            y += size + gap

    centred(card.title, 40, GREY)
    y += 20
    centred(card.name, 104, INK, gap=30)
    centred(card.subtitle, 40, GREY)
    y += 30
    centred(card.code_label, 34, GREY, gap=6)
    centred(card.code, 118, ACCENT)
    y += 10
    if card.link:
        qr = Image.open(io.BytesIO(qr_png(card.link))).convert("RGB")
        side = min(600, HEIGHT - y - 420)
        qr = qr.resize((side, side), Image.Resampling.NEAREST)
        image.paste(qr, ((WIDTH - side) // 2, y))
        y += side + 10
        centred(card.qr_caption, 36, INK)
        centred(card.link, 28, GREY)
        y += 16
    for line in card.lines:
        centred(line, 36, INK)
    y = max(y + 20, HEIGHT - MARGIN - 2 * 44)
    centred(card.footer, 30, GREY)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(300, 300), optimize=True)
    return buffer.getvalue()


def write_sheet(path: Path, cards: list[LinkCard], files: list[str], header: list[str],
                title: str) -> None:
    """One row per card: who, the code, until when, the link, the words, the card's file."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.worksheet import Worksheet

    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)  # a new workbook's one sheet
    sheet.title = title[:31]
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for number, (card, file) in enumerate(zip(cards, files, strict=True), 1):
        sheet.append([number, card.name, card.person_id, card.role, card.unit, card.code,
                      card.expires, card.link, card.send, file])
        if card.link:
            sheet.cell(row=number + 1, column=8).hyperlink = card.link
    sheet.freeze_panes = "A2"
    for column, width in zip("ABCDEFGHIJ", (6, 12, 14, 14, 10, 14, 18, 44, 20, 24),
                             strict=True):
        sheet.column_dimensions[column].width = width
    book.save(path)
