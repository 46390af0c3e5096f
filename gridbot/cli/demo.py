"""``gridbot demo``: the whole loop in a terminal, from a script or typed as any person."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from gridbot.cli.command import Group
from gridbot.cli.session import Session
from gridbot.errors import OptionError

COMMANDS = Group()


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--script", metavar="FILE")
    parser.add_argument("--db", metavar="FILE")
    parser.add_argument("--start", metavar="'YYYY-MM-DD HH:MM'", default=None)
    parser.add_argument("--files", metavar="DIR", default=None)
    parser.add_argument("--web", action="store_true")
    parser.add_argument("--port", type=int, default=8080, metavar="PORT")


@COMMANDS.command("demo", arguments=_arguments, sample_org=True)
async def demo(session: Session, args: argparse.Namespace) -> int:
    from gridbot.demo import DEFAULT_START, Demo, parse_start

    config, renderer = session.configured, session.renderer
    try:
        start = parse_start(args.start or DEFAULT_START, config)
    except ValueError:
        raise OptionError("--start", args.start, "local_time") from None
    # Which org this is: ./gridbot.toml when there is one, as for every command.
    print(renderer.text("demo_config", path=str(session.config_path), sample=session.sample),
          file=session.err)
    lines = None
    if args.script:
        try:
            lines = Path(args.script).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            print(renderer.text("script_missing", path=args.script), file=session.err)
            return 2
    with tempfile.TemporaryDirectory(prefix="gridbot-demo-") as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "demo.db"
        files = Path(args.files) if args.files else None
        async with Demo(config, db, start, files=files) as play:
            if not args.web:
                if lines is not None:
                    return await play.run_script(lines)
                return await play.interactive()
            if lines is not None:  # the story first: its waits would spend the links
                await play.run_script(lines)
            try:
                http = await play.serve_web(args.port)
            except OSError as exc:
                print(renderer.text("run_http_error", host="127.0.0.1", port=args.port,
                                    message=exc.strerror or str(exc)), file=session.err)
                return 1
            try:
                if lines is None and sys.stdin.isatty():
                    return await play.interactive()
                # Serve until Ctrl-C: the console is what is being shown.
                print(renderer.text("web_serving"), file=session.out, flush=True)
                await asyncio.Event().wait()
                return 0
            finally:
                await http.stop()
