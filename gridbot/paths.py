"""Where gridbot's own files are: one place, imported by whatever reads them.

The repository keeps the templates in its top-level ``templates/`` folder; installed, they
are the package ``gridbot.templates`` (``package-dir`` in pyproject.toml), so they are
found through the package, wherever pip put it, and never beside the sources.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import jinja2

#: the package holding the message templates
TEMPLATES_PACKAGE = "gridbot.templates"

#: the message templates, one folder per locale
TEMPLATES = Path(str(files(TEMPLATES_PACKAGE)))


def template_loader(*folders: str, root: Path | None = None) -> jinja2.BaseLoader:
    """Templates from ``folders`` (``"zh-CN/cli"``; the first that has a name wins).

    The installed templates are read through the package; another ``root`` (a folder of
    one's own templates) from the file system.
    """
    if root is None or root == TEMPLATES:
        return jinja2.ChoiceLoader(
            [jinja2.PackageLoader(TEMPLATES_PACKAGE, folder) for folder in folders])
    return jinja2.FileSystemLoader([str(root / folder) for folder in folders])
