"""Adapters and handlers don't reach into the engine (issue 16, item 2).

The engine sits on top: it imports the handlers and the services they use, and it
implements the small intake adapters hand messages to. Nothing below imports it back,
so the code has no import circle. These tests read the import statements of every
module (those under ``if TYPE_CHECKING`` and inside functions too) and follow them.
"""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from gridbot.context import Context, Services

ROOT = Path(__file__).resolve().parent.parent
#: our packages and the folders holding them (pyproject's package-dir)
PACKAGES = {"gridbot": "gridbot", "gridbot.handlers": "handlers"}


@cache
def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join([package, *(parts[:-1] if parts[-1] == "__init__" else parts)])
            found[name] = path
    return found


def _ours(name: str) -> str | None:
    """The module of ours that ``name`` (a module or a name in one) is, if any."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports(module: str) -> frozenset[str]:
    """Our modules that ``module`` imports, anywhere in its code."""
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(m for t in targets if (m := _ours(t)) and m != module)
    return frozenset(found)


def reached(start: str) -> set[str]:
    """Every module of ours that importing ``start`` may import, however indirectly."""
    seen, todo = set(), [start]
    while todo:
        for module in imports(todo.pop()):
            if module not in seen:
                seen.add(module)
                todo.append(module)
    return seen


def cycles() -> list[set[str]]:
    """Groups of modules that import each other in a circle (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in imports(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = set()
            while True:
                other = stack.pop()
                group.add(other)
                if other == module:
                    break
            if len(group) > 1:
                found.append(group)

    for module in modules():
        if module not in index:
            visit(module)
    return found


ADAPTERS = sorted(m for m in modules() if m.startswith("gridbot.adapters."))


def test_the_import_reader_sees_imports() -> None:
    assert "gridbot.adapters" in ADAPTERS[0] and len(ADAPTERS) >= 7
    assert "gridbot.engine" in reached("gridbot.runtime")
    assert {"gridbot.handlers", "gridbot.context"} <= reached("gridbot.engine")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_no_adapter_imports_the_engine(adapter: str) -> None:
    assert not {"gridbot.engine", "gridbot.handlers", "gridbot.context"} & reached(adapter), (
        adapter, sorted(reached(adapter)))


def test_importing_every_adapter_loads_neither_engine_nor_handlers() -> None:
    code = "; ".join([*(f"import {m}" for m in ADAPTERS), "import sys",
                      "print(sorted(m for m in sys.modules if m == 'gridbot.engine' "
                      "or m.startswith('gridbot.handlers')))"])
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    assert run.stdout.strip() == "[]", run.stdout + run.stderr


@pytest.mark.parametrize("module", [
    "gridbot.handlers.resident", "gridbot.handlers.steward", "gridbot.handlers.workorder",
    "gridbot.handlers.account", "gridbot.handlers.notices", "gridbot.handlers.stats",
    "gridbot.context", "gridbot.cases",
    "gridbot.escalation", "gridbot.notices", "gridbot.outbox", "gridbot.setaside",
    "gridbot.offers", "gridbot.timers.digest", "gridbot.linking", "gridbot.commands",
    "gridbot.policy.permissions", "gridbot.declare", "gridbot.domain"])
def test_what_the_engine_uses_does_not_import_it_back(module: str) -> None:
    assert "gridbot.engine" not in reached(module), sorted(reached(module))
    # and the handler modules are imported by their package, not the other way round
    assert "gridbot.handlers" not in reached(module)


def test_no_module_is_part_of_an_import_circle() -> None:
    """The one circle left is inside the store package (its ``__init__`` and the two
    stores), which the store's own rewrite (item 3) replaces."""
    outside_store = [sorted(group) for group in cycles()
                     if not all(m.startswith("gridbot.store") for m in group)]
    assert outside_store == []


def test_handlers_get_services_not_the_engine() -> None:
    fields = {f.name for f in dataclasses.fields(Context)}
    assert "engine" not in fields and "services" in fields
    assert "engine" not in {f.name for f in dataclasses.fields(Services)}


def test_reading_the_configuration_loads_no_platform_library() -> None:
    """Each platform's settings sit in its adapter package, whose ``__init__`` imports
    nothing: the configuration reads them without loading the platform's library."""
    code = ("import sys, gridbot.config; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('telegram', 'wechatpy')))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    assert run.stdout.strip() == "[]", run.stdout + run.stderr
