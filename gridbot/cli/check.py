"""``gridbot check-config``: is the configuration complete, and does it reach everyone?"""

from __future__ import annotations

import argparse

from gridbot.cli.command import Group
from gridbot.cli.session import Session
from gridbot.config import load_config
from gridbot.reach import unreachable_for_check, warn_unreachable

COMMANDS = Group()


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", action="store_true")


@COMMANDS.command("check-config", arguments=_arguments)
async def check_config(session: Session, args: argparse.Namespace) -> int:
    """The file is valid; its platform secrets are read now, and a missing one is a
    warning (``--strict``: an error), since only ``gridbot run`` needs them. Rostered
    people no message reaches are listed as a warning (from the database when it exists;
    before it does, nobody has linked anything yet)."""
    config, renderer = session.configured, session.renderer
    missing = config.missing_secrets()
    if not missing:
        assert session.config_path is not None
        load_config(session.config_path)  # the secrets' values too (a bad key is an error)
    print(renderer.text(
        "config_ok", source=config.source, communities=len(config.communities),
        grids=len(config.grids), microgrids=len(config.microgrids),
        people=len(config.people), rosters=len(config.rosters)), file=session.out)
    for key, variable in missing:
        print(renderer.text("secret_missing", key=key, variable=variable, strict=args.strict),
              file=session.err)
    # Rostered people no message reaches: routing passes them over (a warning, not an
    # error: linking everyone takes days, and the ladder covers them meanwhile). The
    # database is read as it is, never created (not through the session's store).
    found, unknown = await unreachable_for_check(config)
    warn_unreachable(found, renderer, session.err, unknown=unknown)
    return 2 if missing and args.strict else 0
