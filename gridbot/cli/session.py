"""What a command works with: its configuration, its words, its output, and the store.

Every subcommand gets a :class:`Session`. :func:`read_config` makes it from the command
line (the file ``--config`` names, else ``./gridbot.toml``, else for the demo the sample
org). The session, an async context manager, is the one way a command reaches the
database: the store opens on first use, with the org tree (or the whole engine) brought
in line with the configuration, and closes when the command ends, whatever happened. A
command that fails on its arguments before it asks for the store never creates or
migrates a database.
"""

from __future__ import annotations

import argparse
import enum
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from zoneinfo import ZoneInfo

from gridbot import logs
from gridbot.clock import Clock, SystemClock
from gridbot.config import Config, load_config
from gridbot.render import Renderer
from gridbot.store import Store, store_for_url

if TYPE_CHECKING:
    from gridbot.engine import Engine

#: the configuration a command reads when ``--config`` names none
DEFAULT_CONFIG = Path("gridbot.toml")
#: the time zone of a command that reads no configuration (and of the complaint that
#: the configuration cannot be read)
BARE_TIMEZONE = ZoneInfo("Asia/Shanghai")


class Needs(enum.Enum):
    """What of the configuration a command reads before it runs."""

    #: none: it speaks the language the command line was given in (``init``)
    NOTHING = "nothing"
    #: the configuration file, its platforms' secrets unread (they may be unset in cron)
    CONFIG = "config"
    #: the configuration and the platforms' secrets (``run``, which talks to them)
    SECRETS = "secrets"


def demo_config_path() -> Path:
    """The sample org the demo plays where there is no ``./gridbot.toml``."""
    return Path(str(resources.files("gridbot") / "data" / "demo.toml"))


class ConfigMissing(Exception):
    """The configuration file is not there (``given``: named by ``--config``)."""

    def __init__(self, path: Path, given: bool) -> None:
        super().__init__(str(path))
        self.path = path
        self.given = given


@dataclass(kw_only=True)
class Session:
    """One command's configuration, words and output; the store on first use.

    ``async with session:`` closes the store when the command ends, if it opened it.
    A test makes one with its own configuration, clock and output:
    ``async with Session(config=config, renderer=renderer, out=buffer) as session``.
    """

    #: ``None`` for a command that reads no configuration
    config: Config | None
    renderer: Renderer
    #: the file the configuration was read from
    config_path: Path | None = None
    #: the configuration is the bundled sample org (the demo without ./gridbot.toml)
    sample: bool = False
    clock: Clock = field(default_factory=SystemClock)
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    _store: Store | None = field(default=None, init=False, repr=False)
    _engine: Engine | None = field(default=None, init=False, repr=False)

    @property
    def configured(self) -> Config:
        """The configuration, for a command that declared it needs one."""
        assert self.config is not None, "this command reads no configuration"
        return self.config

    async def _open(self) -> Store:
        if self._store is None:
            store = store_for_url(self.configured.storage_url)
            await store.open()  # pending migrations are applied, as `gridbot run` would
            self._store = store
        return self._store

    async def store(self) -> Store:
        """The configured store, open, with the org tree as the configuration has it."""
        if self._store is not None:
            return self._store
        store = await self._open()
        async with store.transaction() as tx:
            await tx.sync_org(self.configured)
        return store

    async def engine(self) -> Engine:
        """The engine over the store, started: org and people as the configuration has
        them, and the services (link codes, notices, rendering) the chat uses."""
        if self._engine is None:
            from gridbot.engine import Engine

            engine = Engine(self.configured, await self._open(), self.clock, self.renderer)
            await engine.start()
            self._engine = engine
        return self._engine

    async def close(self) -> None:
        store, self._store, self._engine = self._store, None, None
        if store is not None:
            await store.close()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def read_config(args: argparse.Namespace, needs: Needs, *, sample_org: bool = False,
                locale: str) -> Session:
    """A command's session as the command line asks: its configuration read (or not, as
    it ``needs``), in the configuration's language. ``sample_org``: without ``--config``
    and ``./gridbot.toml``, the bundled sample org.

    Raises :class:`ConfigMissing` or :class:`~gridbot.errors.ConfigError`; ``locale``
    (the configuration's, peeked before parsing) words a command without one.
    """
    if needs is Needs.NOTHING:
        return Session(config=None, renderer=Renderer(BARE_TIMEZONE, locale))
    given = getattr(args, "config", None)
    path, sample = Path(given) if given is not None else DEFAULT_CONFIG, False
    if given is None and sample_org and not path.exists():
        path, sample = demo_config_path(), True
    if not path.exists():
        raise ConfigMissing(path, given is not None)
    # Only `run` talks to the platforms: every other command leaves their secrets unread,
    # so it works where they are not set (cron).
    config = load_config(path, secrets=needs is Needs.SECRETS)
    logs.hide(logs.secrets_of(config))
    return Session(config=config, renderer=Renderer(config.timezone, config.locale),
                   config_path=path, sample=sample)
