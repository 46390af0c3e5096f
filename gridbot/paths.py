"""Where gridbot's own files are: one place, imported by whatever reads them."""

from __future__ import annotations

from pathlib import Path

#: the message templates, one folder per locale
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
