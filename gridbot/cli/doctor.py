"""``gridbot doctor``: checks everything the bot depends on (:mod:`gridbot.doctor`) and
says, one line each, what is fine and what to do about what is not."""

from __future__ import annotations

import argparse

from gridbot.cli.command import Group
from gridbot.cli.session import Session

COMMANDS = Group()


def _arguments(parser: argparse.ArgumentParser) -> None:
    """No options: it checks what the configuration names."""


@COMMANDS.command("doctor", arguments=_arguments)
async def doctor(session: Session, args: argparse.Namespace) -> int:
    """Exit code 0 only when every check is fine, 1 otherwise. The platforms' secrets
    are read from the environment as ``gridbot run`` would; one unset is a finding."""
    from gridbot.doctor import examine

    renderer = session.renderer
    found = await examine(session.configured, session.clock, config_path=session.config_path)
    for finding in found:
        print(renderer.text("doctor_line", check=finding.check, ok=finding.ok,
                            p=dict(finding.params)), file=session.out)
    faults = sum(1 for f in found if not f.ok)
    print(renderer.text("doctor_summary", faults=faults, checks=len(found)), file=session.out)
    return 0 if faults == 0 else 1
