"""Writing TOML: the block of the configuration file that ``gridbot import`` owns,
between its two marker lines; everything outside them (the hand-written settings and
their comments) is left exactly as it was.

The block is written with tomlkit, which escapes strings as TOML wants them; ``gridbot
init`` fills its starter file's values with the same :func:`toml_string`.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import tomlkit

BEGIN = "# >>> gridbot import"
END = "# <<< gridbot import"
#: the configuration's tables the block holds, in the order it writes them
TABLES = ("communities", "grids", "microgrids", "people", "rosters")
_BLOCK = re.compile(rf"(?ms)^{re.escape(BEGIN)}[^\n]*\n.*?^{re.escape(END)}[^\n]*(?:\n|\Z)")


def split_block(text: str) -> tuple[str, str, int]:
    """The configuration without the imported block, the block, and where it was."""
    match = _BLOCK.search(text)
    if match is None:
        return text, "", len(text)
    return text[:match.start()] + text[match.end():], match.group(0), match.start()


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string (quotes and control characters escaped)."""
    return tomlkit.string(value).as_string()


def render_block(entries: dict[str, list[dict[str, Any]]], source: str) -> str:
    """The imported block as TOML, the same text for the same entries: the marker
    comments, then an array of tables per kind of entry (fields starting with ``_`` are
    the import's own notes and are left out)."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"{BEGIN.removeprefix('# ')} from {source}. Written by "
                            "`gridbot import`: change the sheet and"))
    doc.add(tomlkit.comment("import it again rather than editing between these two marker "
                            "lines."))
    doc.add(tomlkit.nl())
    for kind in TABLES:
        if not entries[kind]:
            continue
        tables = tomlkit.aot()
        for item in entries[kind]:
            table = tomlkit.table()
            for key, value in item.items():
                if not key.startswith("_"):
                    table.add(key, [str(v) for v in value] if isinstance(value, list)
                              else str(value))
            tables.append(table)
        doc.add(kind, tables)
    doc.add(tomlkit.nl())
    doc.add(tomlkit.comment(END.removeprefix("# ")))
    return tomlkit.dumps(doc)


def block_entries(block: str) -> dict[str, list[dict[str, Any]]]:
    data = tomllib.loads(block) if block else {}
    return {k: list(data.get(k, [])) for k in TABLES}


def write_text_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
