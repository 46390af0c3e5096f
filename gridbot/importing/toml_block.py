"""Writing TOML: the block of the configuration file that ``gridbot import`` owns,
between its two marker lines; everything outside them is left exactly as it was."""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

BEGIN = "# >>> gridbot import"
END = "# <<< gridbot import"
_BLOCK = re.compile(rf"(?ms)^{re.escape(BEGIN)}[^\n]*\n.*?^{re.escape(END)}[^\n]*(?:\n|\Z)")


def split_block(text: str) -> tuple[str, str, int]:
    """The configuration without the imported block, the block, and where it was."""
    match = _BLOCK.search(text)
    if match is None:
        return text, "", len(text)
    return text[:match.start()] + text[match.end():], match.group(0), match.start()


def toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def render_block(entries: dict[str, list[dict[str, Any]]], source: str) -> str:
    """The imported block as TOML, the same text for the same entries."""
    lines = [f"{BEGIN} from {source}. Written by `gridbot import`: change the sheet and",
             "# import it again rather than editing between these two marker lines.", ""]
    for table, items in (("communities", entries["communities"]),
                         ("grids", entries["grids"]), ("microgrids", entries["microgrids"]),
                         ("people", entries["people"]), ("rosters", entries["rosters"])):
        for item in items:
            lines.append(f"[[{table}]]")
            for key, value in item.items():
                if key.startswith("_"):
                    continue
                if isinstance(value, list):
                    lines.append(f"{key} = [{', '.join(toml_string(v) for v in value)}]")
                else:
                    lines.append(f"{key} = {toml_string(str(value))}")
            lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def block_entries(block: str) -> dict[str, list[dict[str, Any]]]:
    data = tomllib.loads(block) if block else {}
    return {k: list(data.get(k, [])) for k in ("communities", "grids", "microgrids", "people",
                                                "rosters")}


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
