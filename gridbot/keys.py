"""The per-install secret that link codes are hashed with.

A link code hands a chat account a person's rights, and the database keeps it only as a
hash. A plain hash of an 8-letter code (40 bits) is undone in minutes by anyone holding a
copy of the database (a backup, a file mailed for support), so the hash is keyed
(HMAC-SHA256) with a secret that is not in the database:

* ``[gridbot] secret`` when it is set (written as ``"env:GRIDBOT_SECRET"``). Workers on
  several machines sharing one PostgreSQL database must all use the same one.
* Otherwise a key file made on first use, readable by its owner only (0600): beside the
  SQLite database (``gridbot.db.key`` for ``gridbot.db``), or beside the configuration
  file for PostgreSQL (``gridbot.key``). ``gridbot backup`` does not copy it.
* An in-memory database with no configuration file on disk gets a key for the
  process's lifetime, as long as its codes live.

Losing the key only makes the codes not yet used invalid: issue new ones.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from gridbot.config import Config
from gridbot.errors import StoreError
from gridbot.store.base import Store

log = logging.getLogger(__name__)

KEY_BYTES = 32


def key_file(config: Config, store: Store) -> Path | None:
    """Where the key file belongs, or ``None`` if there is no place on disk for it."""
    database = store.database_file
    if database is not None:
        return database.with_name(database.name + ".key")
    source = Path(config.source)
    if source.is_file():
        return source.with_name("gridbot.key")
    return None


def link_key(config: Config, store: Store) -> bytes:
    """The secret for link codes: ``[gridbot] secret``, else the key file (made if
    missing), else one for this process only."""
    if config.secret:
        return config.secret.encode()
    path = key_file(config, store)
    if path is None:
        return secrets.token_hex(KEY_BYTES).encode()
    try:
        return _read_or_make(path)
    except OSError as exc:
        raise StoreError(f"cannot read or make the link-code key {path}: {exc}") from exc


def _read_or_make(path: Path) -> bytes:
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    # Written whole under another name, then linked into place: a second process
    # starting at the same moment either wins or reads the winner's key, never half.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(KEY_BYTES) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
            log.info("made the link-code key %s (0600; keep it with the database, "
                     "not in its backups)", path)
        except FileExistsError:
            pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return _read(path)


def _read(path: Path) -> bytes:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        try:
            path.chmod(0o600)
            log.warning("made the link-code key %s private (0600; it was %04o)", path, mode)
        except OSError as exc:
            log.warning("the link-code key %s is readable by others (%04o) and could not "
                        "be made private: %s", path, mode, exc)
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise OSError("it is too short; move it away and issue new link codes")
    return key.encode()
