"""The ``gridbot`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from datetime import timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from gridbot import __version__, admin_cli, logs, migrate, notice_cli, office_cli
from gridbot.clock import SystemClock
from gridbot.config import Config, load_config
from gridbot.durations import parse_duration
from gridbot.errors import BadArguments, ConfigError, NotFound, StoreError
from gridbot.linking import DEFAULT_TTL, issue_link_code
from gridbot.render import Renderer
from gridbot.store import store_for_url

DEFAULT_CONFIG = "gridbot.toml"


def demo_config_path() -> Path:
    return Path(str(resources.files("gridbot") / "data" / "demo.toml"))


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help=f"configuration file (default ./{DEFAULT_CONFIG}; "
                             "the demo uses its sample org)")
    common.add_argument("--log-level", metavar="LEVEL", default=argparse.SUPPRESS,
                        type=str.upper, choices=logs.LEVELS,
                        help="how much to log: DEBUG, INFO (default), WARNING or ERROR; "
                             "DEBUG adds the libraries' own lines (secrets masked)")
    parser = argparse.ArgumentParser(
        prog="gridbot", parents=[common],
        description="Chat bot for neighbourhood micro-grid groups (微网格).")
    parser.add_argument("--version", action="version", version=f"gridbot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", parents=[common],
                          help="chat with the bot in the terminal (no account, no network)")
    demo.add_argument("--script", metavar="FILE", help="play a script instead of chatting")
    demo.add_argument("--db", metavar="FILE",
                      help="keep the demo database in FILE (default: a temporary file)")
    demo.add_argument("--start", metavar="'YYYY-MM-DD HH:MM'", default=None,
                      help="virtual start time, local (default 2026-11-23 09:00)")
    demo.add_argument("--files", metavar="DIR", default=None,
                      help="save the files the bot sends (statistics charts) into DIR")

    sub.add_parser("check-config", parents=[common], help="validate the configuration")

    sub.add_parser("run", parents=[common],
                   help="run the bot on the configured platforms until Ctrl-C or SIGTERM")

    notice_cli.add_parser(sub, common)
    migrate.add_parser(sub, common)
    office_cli.add_parsers(sub, common)
    admin_cli.add_parsers(sub, common)

    link = sub.add_parser("link-code", parents=[common],
                          help="make a one-time code that links a chat account to a person")
    link.add_argument("name", help="the person's name or id in the configuration")
    link.add_argument("--ttl", default=None, metavar="DURATION",
                      help="how long the code stays valid (default 72h)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.setup(getattr(args, "log_level", "INFO"), timestamps=args.command == "run")
    config_path = getattr(args, "config", None)
    if args.command == "migrate" and config_path is None and (
            args.source or not Path(DEFAULT_CONFIG).exists()):
        # Moving a database needs no configuration when both ends are given.
        return migrate.run_cli(args, None, Renderer(ZoneInfo("Asia/Shanghai")))
    if config_path is None:
        config_path = demo_config_path() if args.command == "demo" else Path(DEFAULT_CONFIG)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        renderer = Renderer(ZoneInfo("Asia/Shanghai"))
        print(renderer.text("config_error", message=str(exc)), file=sys.stderr)
        return 2
    logs.hide(logs.secrets_of(config))
    renderer = Renderer(config.timezone, config.locale)
    try:
        if args.command == "demo":
            return asyncio.run(_demo(config, args, renderer))
        if args.command == "check-config":
            print(renderer.text(
                "config_ok", source=config.source, communities=len(config.communities),
                grids=len(config.grids), microgrids=len(config.microgrids),
                people=len(config.people), rosters=len(config.rosters)))
            return 0
        if args.command == "migrate":
            return migrate.run_cli(args, config, renderer)
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
    except StoreError as exc:
        print(renderer.text("store_error", message=str(exc)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


async def _demo(config: Config, args: argparse.Namespace, renderer: Renderer) -> int:
    from gridbot.demo import DEFAULT_START, Demo, parse_start

    try:
        start = parse_start(args.start or DEFAULT_START, config)
    except ValueError:
        raise ConfigError("--start", args.start, "a local time like '2026-11-23 09:00'") from None
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
            raise ConfigError("--ttl", args.ttl, "a duration such as '24h' or '3d'") from None
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
