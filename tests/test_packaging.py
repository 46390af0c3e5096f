"""Installed under one name (issue 16, item 7): the wheel holds ``gridbot`` and nothing else.

The repository keeps ``handlers/`` and ``templates/`` at its top; pyproject.toml maps them
into the package (``gridbot.handlers``, ``gridbot.templates``) and lists every package, so
the quick test below checks the list against the folders, and the slow one builds the
wheel, installs it into a fresh virtual environment and plays a demo story from it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
STORY = ROOT / "examples" / "story_corridor_light.txt"


def folder_of(package: str) -> Path:
    """Where the repository keeps ``package`` (pyproject's ``package-dir``)."""
    mapped = SETUPTOOLS.get("package-dir", {})
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        if ".".join(parts[:cut]) in mapped:
            return ROOT / mapped[".".join(parts[:cut])] / Path(*parts[cut:])
    return ROOT / Path(*parts)


def test_every_folder_of_modules_is_a_listed_package() -> None:
    listed = set(SETUPTOOLS["packages"])
    found = set()
    for package in ("gridbot", "gridbot.handlers", "gridbot.templates"):
        top = folder_of(package)
        for init in top.rglob("__init__.py"):
            relative = init.parent.relative_to(top).parts
            found.add(".".join([package, *relative]))
    assert found == listed
    # no module outside a package: it would be left out of the wheel
    for package in listed:
        for module in folder_of(package).rglob("*.py"):
            assert (module.parent / "__init__.py").is_file(), module


def wheel_files() -> dict[str, list[str]]:
    """What the wheel must hold: our modules and data, by the path they install at."""
    want: dict[str, list[str]] = {"modules": [], "data": []}
    for package in SETUPTOOLS["packages"]:
        top = folder_of(package)
        installed = Path(*package.split("."))
        want["modules"] += [str(installed / p.name) for p in top.glob("*.py")]
        for pattern in SETUPTOOLS["package-data"].get(package, []):
            want["data"] += [str(installed / p.relative_to(top)) for p in top.glob(pattern)]
    return want


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip wheel . --no-deps`` builds, from a copy of the sources (so the
    build leaves nothing in the checkout)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for folder in ("gridbot", "handlers", "templates"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    out = work / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q",
                    "-w", str(out)], check=True, capture_output=True, timeout=600)
    [built] = out.glob("gridbot-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_installs_gridbot_alone_with_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"gridbot"}, sorted(tops)
    assert len(tops) == 2
    want = wheel_files()
    assert set(want["modules"]) <= set(names), sorted(set(want["modules"]) - set(names))
    assert set(want["data"]) <= set(names), sorted(set(want["data"]) - set(names))
    # the kinds of data the bot cannot start without, each there
    for needed in ("gridbot/templates/zh-CN/cli.j2", "gridbot/templates/en/cli/args.j2",
                   "gridbot/templates/zh-CN/report/words.j2", "gridbot/data/demo.toml",
                   "gridbot/store/migrations/", "gridbot/store/pg_migrations/"):
        assert any(n.startswith(needed) for n in names), needed
    assert sum(n.endswith(".sql") for n in names) >= 2


@pytest.mark.slow
def test_the_demo_runs_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True,
                   timeout=300)
    # The dependencies are this environment's (offline): its site-packages as a path
    # entry, after the new one's, so its editable gridbot is never imported.
    ours = sysconfig.get_paths()["purelib"]
    [theirs] = (venv / "lib").glob("python3*/site-packages")
    (theirs / "dependencies.pth").write_text(ours + "\n", encoding="utf-8")

    where = subprocess.run(
        [str(python), "-c", "import importlib.util as u, gridbot.handlers, gridbot.templates; "
         "print(gridbot.handlers.__file__); print(gridbot.templates.__file__); "
         "print(u.find_spec('handlers'), u.find_spec('templates'))"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True)
    handlers, templates, missing = where.stdout.splitlines()
    assert handlers.startswith(str(theirs)) and templates.startswith(str(theirs))
    assert missing == "None None"

    installed = subprocess.run([str(venv / "bin" / "gridbot"), "demo", "--script", str(STORY)],
                               cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr
    assert "  → 群「幸福里1-3幢」: 收到，已登记为 #1" in installed.stdout
    here = subprocess.run([sys.executable, "-m", "gridbot", "demo", "--script", str(STORY)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    # the same story, word for word, but for where the demo's configuration was read from
    assert f"{theirs}/gridbot/data/demo.toml" in installed.stdout
    assert installed.stdout.replace(str(theirs), "") == here.stdout.replace(
        str(ROOT), "").replace(sysconfig.get_paths()["purelib"], "")
