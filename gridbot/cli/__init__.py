"""The ``gridbot`` command line: one module per group of subcommands.

:mod:`.dispatch` builds the parser and runs a subcommand; :mod:`.command` is how a
module declares its subcommands; :mod:`.session` reads the configuration and opens the
store for one; :mod:`.language` words the help and argparse in the configured language.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """The ``gridbot`` entry point (pyproject's ``[project.scripts]``)."""
    from gridbot.cli.dispatch import main as dispatch

    return dispatch(argv)
