"""The report's charts, drawn with matplotlib (Agg, no display) in a CJK font.

Chinese labels need a font with Chinese glyphs, which a fresh server rarely has. The
``mplfonts`` package ships Noto Sans CJK SC (SIL Open Font License) inside its wheel,
so ``pip install`` alone is enough; we register that file with matplotlib's font manager
(without importing mplfonts, whose command line we do not need). A machine that has a
CJK font installed of its own is used as a fallback. Without any, the charts are still
drawn and a warning says the labels may show as boxes.

Every chart is drawn once per call on its own ``Figure`` (no pyplot, no global state),
and comes back as PNG bytes and as SVG text with the letters turned into outlines, so
the HTML page shows it identically on any computer, fonts or not.
"""

from __future__ import annotations

import contextvars
import importlib.util
import io
import logging
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

log = logging.getLogger(__name__)

#: the font file inside the mplfonts wheel
_BUNDLED = ("mplfonts", "fonts/NotoSansCJKsc-Regular.otf")
_SYSTEM_CJK = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
               "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", "SimHei",
               "Noto Sans CJK JP", "Noto Sans CJK TC")

BLUE, GREEN, GREY, RED = "#2f6db5", "#3a9a5b", "#9aa3ad", "#c8553d"

#: held while drawing on a worker thread: matplotlib's style settings are global, so two
#: charts drawn at once in two threads could borrow each other's fonts
DRAWING = threading.Lock()


@dataclass(frozen=True, kw_only=True)
class Chart:
    name: str
    title: str
    png: bytes
    svg: str


def bundled_font() -> Path | None:
    """The CJK font file the mplfonts package ships, if it is installed."""
    spec = importlib.util.find_spec(_BUNDLED[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / _BUNDLED[1]
        if path.is_file():
            return path
    return None


@cache
def cjk_family() -> str | None:
    """Register a CJK font with matplotlib and return its family name (once per process)."""
    from matplotlib import font_manager

    path = bundled_font()
    if path is not None:
        font_manager.fontManager.addfont(str(path))
        return font_manager.FontProperties(fname=str(path)).get_name()
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for family in _SYSTEM_CJK:
        if family in installed:
            return family
    log.warning("no CJK font found: Chinese chart labels may show as boxes "
                "(pip install mplfonts, or install fonts-noto-cjk)")
    return None


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig


def _style() -> dict[RcKeyType, Any]:
    family = cjk_family()
    fonts = [family, "DejaVu Sans"] if family else ["DejaVu Sans"]
    return {"font.family": "sans-serif", "font.sans-serif": fonts,
            "axes.unicode_minus": False, "svg.fonttype": "path", "svg.hashsalt": "gridbot",
            "axes.spines.top": False, "axes.spines.right": False, "font.size": 10}


def _whole_numbers(axis: Axis) -> None:
    """Ticks at whole numbers only, on an axis that counts cases."""
    from matplotlib.ticker import MaxNLocator

    locator = axis.get_major_locator()
    if isinstance(locator, MaxNLocator):  # the default, AutoLocator, is one
        locator.set_params(integer=True)


#: set (by :func:`svg_only`) while drawing for a web page, which shows the SVG alone
_SVG_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("svg_only", default=False)


@contextmanager
def svg_only() -> Iterator[None]:
    """Charts drawn inside come without their PNG (``png`` is empty): a page shows the
    SVG, and rendering the PNG would double the time it waits."""
    token = _SVG_ONLY.set(True)
    try:
        yield
    finally:
        _SVG_ONLY.reset(token)


def _finish(fig: Figure, name: str, title: str) -> Chart:
    png, svg = io.BytesIO(), io.StringIO()
    if not _SVG_ONLY.get():
        fig.savefig(png, format="png")
    # No date in the SVG, so the same report drawn twice is the same file.
    fig.savefig(svg, format="svg", metadata={"Date": None})
    text = svg.getvalue()
    return Chart(name=name, title=title, png=png.getvalue(), svg=text[text.index("<svg"):])


def cases_per_day(title: str, days: Sequence[str], opened: Sequence[int],
                  resolved: Sequence[int], labels: tuple[str, str], y_label: str) -> Chart:
    """Bars: cases reported each day; a line: cases resolved each day."""
    import matplotlib

    with matplotlib.rc_context(_style()):
        fig = _figure(9, 3.6)
        ax = fig.add_subplot()
        xs = range(len(days))
        ax.bar(xs, opened, color=BLUE, label=labels[0], width=0.7)
        ax.plot(xs, resolved, color=GREEN, marker="o", markersize=3, linewidth=1.6,
                label=labels[1], markevery=[i for i, n in enumerate(resolved) if n])
        step = max(1, math.ceil(len(days) / 12))
        ax.set_xticks(list(xs)[::step], list(days)[::step], rotation=0)
        ax.set_ylabel(y_label)
        _whole_numbers(ax.yaxis)
        ax.set_ylim(bottom=0, top=max([*opened, *resolved, 1]) * 1.15)
        ax.set_title(title, loc="left", fontsize=12)
        ax.legend(frameon=False, loc="lower right", bbox_to_anchor=(1, 1), ncols=2)
        ax.grid(axis="y", color="#e4e7eb", linewidth=0.8)
        ax.set_axisbelow(True)
        return _finish(fig, "cases-per-day", title)


def rate_by_unit(title: str, names: Sequence[str], rates: Sequence[float | None],
                 counts: Sequence[str], no_cases: str) -> Chart:
    """Horizontal bars: the resolution rate of each unit, with its figures at the end."""
    import matplotlib

    with matplotlib.rc_context(_style()):
        fig = _figure(9, max(2.2, 0.38 * len(names) + 1.2))
        ax = fig.add_subplot()
        ys = list(range(len(names)))[::-1]
        values = [100 * r if r is not None else 0 for r in rates]
        colours = [GREY if r is None else RED if r < 0.8 else BLUE for r in rates]
        ax.barh(ys, values, color=colours, height=0.62)
        for y, rate, text in zip(ys, rates, counts, strict=True):
            label = no_cases if rate is None else f"{100 * rate:.1f}%  {text}"
            ax.text((100 * rate if rate is not None else 0) + 1, y, label, va="center",
                    fontsize=9)
        ax.set_yticks(ys, list(names))
        ax.set_xlim(0, 130)
        ax.spines["bottom"].set_bounds(0, 100)
        ax.set_xticks([0, 20, 40, 60, 80, 100], ["0", "20%", "40%", "60%", "80%", "100%"])
        ax.axvline(100, color="#c9ced4", linewidth=0.8)
        ax.set_title(title, loc="left", fontsize=12)
        ax.grid(axis="x", color="#eef0f2", linewidth=0.8)
        ax.set_axisbelow(True)
        return _finish(fig, "resolution-rate", title)


def distribution(title: str, buckets: Sequence[str], counts: Sequence[int], y_label: str,
                 note: str) -> Chart:
    """Bars: how many cases took how long to resolve."""
    import matplotlib

    with matplotlib.rc_context(_style()):
        fig = _figure(9, 3.4)
        ax = fig.add_subplot()
        xs = range(len(buckets))
        ax.bar(xs, counts, color=GREEN, width=0.65)
        for x, n in zip(xs, counts, strict=True):
            if n:
                ax.text(x, n, str(n), ha="center", va="bottom", fontsize=9)
        ax.set_xticks(list(xs), list(buckets))
        ax.set_ylabel(y_label)
        ax.set_ylim(0, max([*counts, 1]) * 1.2)
        _whole_numbers(ax.yaxis)
        ax.set_title(title, loc="left", fontsize=12)
        if note:
            ax.text(1, 1.02, note, transform=ax.transAxes, ha="right", va="bottom",
                    fontsize=9, color="#555")
        ax.grid(axis="y", color="#e4e7eb", linewidth=0.8)
        ax.set_axisbelow(True)
        return _finish(fig, "time-to-resolve", title)


def font_subset(text: str) -> bytes | None:
    """The bundled CJK font cut down to the characters of ``text`` (an OpenType file), so a
    page can carry its own font: a few hundred characters make about 150 KB."""
    path = bundled_font()
    if path is None:
        return None
    from fontTools import subset

    options = subset.Options()
    options.layout_features = ["*"]
    options.notdef_outline = True
    font = subset.load_font(str(path), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(set(text))))
    subsetter.subset(font)
    out = io.BytesIO()
    subset.save_font(font, out, options)
    return out.getvalue()
