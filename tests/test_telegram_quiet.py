"""The Telegram adapter quiets its library at start-up, not on import (issue 16, item 6):
importing it leaves the process's logging and warnings settings as they were."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

from gridbot.adapters.telegram.adapter import QUIETED_LOGGERS, quiet_library_noise

ROOT = Path(__file__).resolve().parent.parent

_SETTINGS = f"""
import logging, warnings
def settings():
    return (repr(warnings.filters),
            [(n, list(logging.getLogger(n).filters)) for n in {QUIETED_LOGGERS!r}])
"""


def test_importing_the_adapter_changes_no_global_setting() -> None:
    code = _SETTINGS + """
before = settings()
import gridbot.adapters.telegram.adapter
import gridbot.adapters.telegram.html, gridbot.adapters.telegram.settings
print(settings() == before)
"""
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    assert run.stdout.strip() == "True", run.stdout + run.stderr


def test_start_up_quiets_the_library_once() -> None:
    with warnings.catch_warnings():
        quiet_library_noise()
        quiet_library_noise()
        ours = [f for f in warnings.filters if f[2] is not None
                and f[2].__name__ == "PTBDeprecationWarning"]
        assert len(ours) == 1 and ours[0][0] == "ignore"
    for name in QUIETED_LOGGERS:
        assert len(logging.getLogger(name).filters) == 1
