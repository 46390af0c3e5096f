"""mypy over the files ``[tool.mypy]`` names, each checked under the module name it installs as.

mypy names a module by its folder, and cannot follow setuptools' ``package-dir`` (it maps
a folder to another package name: python/mypy#10564), nor the import hook an editable
install uses for it. So this runs mypy's own build on the sources its configuration finds,
with every file under a ``package-dir`` folder named as setuptools installs it; without
such a table it checks exactly what ``mypy`` with no arguments checks. Prints mypy's
messages and a summary; exits 1 when there are errors, 2 when mypy could not run.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from mypy import build
from mypy.errors import CompileError
from mypy.fscache import FileSystemCache
from mypy.main import process_options
from mypy.modulefinder import BuildSource

ROOT = Path(__file__).resolve().parent.parent


def package_dirs() -> dict[Path, str]:
    """Folders setuptools installs under another package name: folder -> package."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        table = tomllib.load(file).get("tool", {}).get("setuptools", {})
    return {(ROOT / folder).resolve(): package
            for package, folder in table.get("package-dir", {}).items() if package}


def installed_name(source: BuildSource, mapped: dict[Path, str]) -> BuildSource:
    """``source`` under the module name its file has once installed."""
    if source.path is None:
        return source
    path = Path(source.path).resolve()
    for folder, package in mapped.items():
        if path.is_relative_to(folder):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            module = ".".join([package, *parts])
            return BuildSource(source.path, module, source.text, source.base_dir)
    return source


def main() -> int:
    fscache = FileSystemCache()
    sources, options = process_options(sys.argv[1:], fscache=fscache)
    mapped = package_dirs()
    sources = [installed_name(s, mapped) for s in sources]
    try:
        messages = build.build(sources, options, fscache=fscache).errors
    except CompileError as error:  # a syntax error, a module found twice: nothing checked
        print("\n".join(error.messages))
        return 2
    if messages:
        print("\n".join(messages))
    errors = sum(": error:" in m for m in messages)
    files = len({m.split(":", 1)[0] for m in messages if ": error:" in m})
    if errors:
        print(f"Found {errors} error{'s' * (errors != 1)} in {files} "
              f"file{'s' * (files != 1)} (checked {len(sources)} source files)")
        return 1
    print(f"Success: no issues found in {len(sources)} source files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
