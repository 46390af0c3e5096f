"""The ``gridbot`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from datetime import timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from gridbot import (
    __version__,
    admin_cli,
    cli_text,
    init_cli,
    logs,
    migrate,
    notice_cli,
    office_cli,
    people_cli,
)
from gridbot.clock import SystemClock
from gridbot.config import Config, load_config
from gridbot.durations import parse_duration
from gridbot.errors import BadArguments, ConfigError, NotFound, OptionError, StoreError
from gridbot.linking import DEFAULT_TTL, issue_link_code
from gridbot.render import Renderer
from gridbot.store import store_for_url

DEFAULT_CONFIG = "gridbot.toml"


def demo_config_path() -> Path:
    return Path(str(resources.files("gridbot") / "data" / "demo.toml"))


def _parser() -> argparse.ArgumentParser:
    """Every command and option; their help comes from ``templates/*/cli/args.j2``
    (:func:`gridbot.cli_text.localize`)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS)
    common.add_argument("--log-level", metavar="LEVEL", default=argparse.SUPPRESS,
                        type=str.upper, choices=logs.LEVELS)
    parser = argparse.ArgumentParser(prog="gridbot", parents=[common])
    parser.add_argument("--version", action="version", version=f"gridbot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init_cli.add_parser(sub, common)

    demo = sub.add_parser("demo", parents=[common])
    demo.add_argument("--script", metavar="FILE")
    demo.add_argument("--db", metavar="FILE")
    demo.add_argument("--start", metavar="'YYYY-MM-DD HH:MM'", default=None)
    demo.add_argument("--files", metavar="DIR", default=None)

    check = sub.add_parser("check-config", parents=[common])
    check.add_argument("--strict", action="store_true")

    sub.add_parser("run", parents=[common])

    notice_cli.add_parser(sub, common)
    migrate.add_parser(sub, common)
    office_cli.add_parsers(sub, common)
    admin_cli.add_parsers(sub, common)
    people_cli.add_parser(sub, common)

    link = sub.add_parser("link-code", parents=[common])
    link.add_argument("name", nargs="?", metavar="NAME")
    link.add_argument("--ttl", default=None, metavar="DURATION")
    link.add_argument("--all-unlinked", action="store_true", dest="all_unlinked")
    link.add_argument("--scope", metavar="CODE")
    link.add_argument("--out", metavar="DIR")
    link.add_argument("--bot", metavar="USERNAME")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = _main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader went away (`gridbot audit | head -1`): stop quietly, as cat does.
        # Whatever is still buffered for the closed pipe goes nowhere rather than into
        # a second traceback when Python flushes at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what the shell reports for a command the pipe ended


def _main(argv: list[str]) -> int:
    locale = cli_text.peek_locale(argv, Path(DEFAULT_CONFIG), demo_config_path())
    with cli_text.speaking(locale):
        parser = _parser()
        cli_text.localize(parser, locale)
        args = parser.parse_args(argv)
    logs.setup(getattr(args, "log_level", "INFO"), timestamps=args.command == "run")
    config_path = getattr(args, "config", None)
    if args.command == "migrate" and config_path is None and (
            args.source or not Path(DEFAULT_CONFIG).exists()):
        # Moving a database needs no configuration when both ends are given.
        return migrate.run_cli(args, None, Renderer(ZoneInfo("Asia/Shanghai"), locale))
    if args.command == "init":
        return init_cli.run(args, Renderer(ZoneInfo("Asia/Shanghai"), args.locale or locale))
    demo_org = False
    if config_path is None:
        config_path = Path(DEFAULT_CONFIG)
        if args.command == "demo" and not config_path.exists():
            config_path, demo_org = demo_config_path(), True
    bare = Renderer(ZoneInfo("Asia/Shanghai"), locale)
    if not Path(config_path).exists():
        print(bare.text("config_missing", path=str(config_path),
                        given=getattr(args, "config", None) is not None), file=sys.stderr)
        return 2
    try:
        # Only `run` talks to the platforms: every other command leaves their secrets
        # unread, so it works where they are not set (cron).
        config = load_config(config_path, secrets=args.command == "run")
    except ConfigError as exc:
        print(bare.text("config_error", message=str(exc)), file=sys.stderr)
        return 2
    logs.hide(logs.secrets_of(config))
    renderer = Renderer(config.timezone, config.locale)
    try:
        if args.command == "demo":
            return asyncio.run(_demo(config, args, renderer, Path(config_path), demo_org))
        if args.command == "check-config":
            return _check_config(config, Path(config_path), args, renderer)
        if args.command == "people":
            return asyncio.run(people_cli.run(config, args, renderer))
        if args.command == "migrate":
            return migrate.run_cli(args, config, renderer)
        if args.command == "link-code" and (args.all_unlinked or args.name is None
                                            or args.out):
            return asyncio.run(people_cli.cards(config, args, renderer))
        if args.command == "link-code":
            return asyncio.run(_link_code(config, args, renderer))
        if args.command == "notice":
            return asyncio.run(notice_cli.run(config, args, renderer))
        if args.command in office_cli.COMMANDS:
            return asyncio.run(office_cli.run(config, args, renderer, Path(config_path)))
        if args.command in admin_cli.COMMANDS:
            return asyncio.run(admin_cli.run(config, args, renderer))
        if args.command == "run":
            from gridbot.runtime import run

            return asyncio.run(run(config, renderer))
    except ConfigError as exc:
        print(renderer.text("config_error", message=str(exc)), file=sys.stderr)
        return 2
    except OptionError as exc:
        print(renderer.text("bad_option", option=exc.option, value=str(exc.value),
                            expected=exc.expected, detail=exc.detail), file=sys.stderr)
        return 2
    except StoreError as exc:
        print(renderer.text("store_error", message=str(exc)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


def _check_config(config: Config, path: Path, args: argparse.Namespace,
                  renderer: Renderer) -> int:
    """The file is valid; its platform secrets are read now, and a missing one is a
    warning (``--strict``: an error), since only ``gridbot run`` needs them. Rostered
    people no message reaches are listed as a warning (from the database when it exists;
    before it does, nobody has linked anything yet)."""
    missing = config.missing_secrets()
    if not missing:
        load_config(path)  # the secrets' values are checked too (a bad key is an error)
    print(renderer.text(
        "config_ok", source=config.source, communities=len(config.communities),
        grids=len(config.grids), microgrids=len(config.microgrids),
        people=len(config.people), rosters=len(config.rosters)))
    for key, variable in missing:
        print(renderer.text("secret_missing", key=key, variable=variable, strict=args.strict),
              file=sys.stderr)
    # Rostered people no message reaches: routing passes them over (a warning, not an
    # error: linking everyone takes days, and the ladder covers them meanwhile).
    found, unknown = asyncio.run(people_cli.unreachable_for_check(config))
    people_cli.warn_unreachable(found, renderer, sys.stderr, unknown=unknown)
    return 2 if missing and args.strict else 0


async def _demo(config: Config, args: argparse.Namespace, renderer: Renderer, path: Path,
                sample: bool) -> int:
    from gridbot.demo import DEFAULT_START, Demo, parse_start

    try:
        start = parse_start(args.start or DEFAULT_START, config)
    except ValueError:
        raise OptionError("--start", args.start, "local_time") from None
    # Which org this is: ./gridbot.toml when there is one, as for every command.
    print(renderer.text("demo_config", path=str(path), sample=sample), file=sys.stderr)
    lines = None
    if args.script:
        try:
            lines = Path(args.script).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            print(renderer.text("script_missing", path=args.script), file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="gridbot-demo-") as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "demo.db"
        files = Path(args.files) if args.files else None
        async with Demo(config, db, start, files=files) as demo:
            if lines is not None:
                return await demo.run_script(lines)
            return await demo.interactive()


async def _link_code(config: Config, args: argparse.Namespace, renderer: Renderer) -> int:
    ttl: timedelta = DEFAULT_TTL
    if args.ttl:
        try:
            ttl = parse_duration(args.ttl)
        except ValueError:
            raise OptionError("--ttl", args.ttl, "duration") from None
    from gridbot.engine import Engine

    store = store_for_url(config.storage_url)
    await store.open()
    try:
        clock = SystemClock()
        engine = Engine(config, store, clock, renderer)
        await engine.start()
        try:
            person, code, expires = await issue_link_code(engine, args.name, clock.now(), ttl)
        except NotFound:
            print(renderer.text("no_person", name=args.name), file=sys.stderr)
            return 1
        except BadArguments:
            print(renderer.text("ambiguous_person", name=args.name), file=sys.stderr)
            return 1
        print(renderer.text("link_code", name=person.name, code=code,
                            expires=expires.astimezone(config.timezone).strftime("%Y-%m-%d %H:%M")))
        return 0
    finally:
        await store.close()
