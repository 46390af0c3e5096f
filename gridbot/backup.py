"""``gridbot backup`` and ``gridbot restore``: a consistent copy of the SQLite file, and back.

A backup is taken with SQLite's online backup API in one step: it reads one snapshot of
the database (in WAL mode a reader never blocks the running bot's writes, and the bot's
writes never tear the copy), writes it to a temporary file next to the destination,
checks it, and only then renames it into place. The copy is a single self-contained file
(rollback journal, no ``-wal`` beside it).

A restore first checks the backup (``PRAGMA integrity_check``, the gridbot tables, a
schema version this gridbot knows), refuses while anything has the target open (a
running ``gridbot run`` or any other connection), keeps the current database next to
it as ``NAME.before-restore-YYYYmmdd-HHMMSS`` (itself a consistent copy, its WAL
included), and copies the backup into the target with the same backup API. Migrations
newer than the backup are applied when gridbot next opens the database.

Every file this writes is readable by its owner only (0600): a backup holds residents'
phones and addresses like the database. Without a FILE, a backup goes into the backup
folder beside the database (``backups/``, 0700) as ``gridbot-YYYYmmdd-HHMMSS.db``; every
backup gridbot writes, there or elsewhere, is recorded in that folder's
``backups.jsonl``, so that ``gridbot forget`` can name the copies that still hold a
forgotten resident's data (:func:`made_backups`).

This is synchronous on purpose: it runs from the command line, not inside the bot.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gridbot.errors import GridbotError

#: tables whose row counts a backup reports (and a restore shows before and after)
COUNTED = ("cases", "case_events", "people", "accounts", "chats", "notices", "outbox",
           "audit_log")
#: tables a file must have to be a gridbot database at all
REQUIRED = ("schema_migrations", "cases", "case_events", "people")
_HEADER = b"SQLite format 3\x00"
#: the folder beside the database that holds gridbot's backups, and its record of them
FOLDER = "backups"
RECORD = "backups.jsonl"

log = logging.getLogger(__name__)


class BackupError(GridbotError):
    """A backup or restore that cannot go ahead; ``code`` names the cli.j2 reason."""

    def __init__(self, code: str, path: str | os.PathLike[str], detail: str = "") -> None:
        super().__init__(f"{code}: {path} {detail}".strip())
        self.code = code
        self.path = str(path)
        self.detail = detail


@dataclass(frozen=True, kw_only=True)
class DatabaseInfo:
    path: str
    version: int
    counts: dict[str, int] = field(default_factory=dict)
    size: int = 0


def sqlite_path(storage_url: str) -> Path:
    """The file behind a ``sqlite:///`` storage URL; other stores have their own tools."""
    if not storage_url.startswith("sqlite:///"):
        raise BackupError("not_sqlite", storage_url.split("@")[-1])
    return Path(storage_url[len("sqlite:///"):])


def latest_version() -> int:
    from gridbot.store import migrating

    return migrating.versions()[-1]


def folder(database: Path) -> Path:
    """The backup folder of ``database``: where backups go unless told otherwise."""
    return database.parent / FOLDER


def _private_folder(path: Path) -> None:
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            path.chmod(0o700)
            log.warning("made the backup folder %s private (0700; it was %04o)", path, mode)


def _private_file(path: Path) -> None:
    """Create ``path`` empty and readable by its owner only; it must not exist yet."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def backup(source: Path, dest: Path | None = None, *,
           now: datetime | None = None) -> DatabaseInfo:
    """Copy the live database ``source`` to ``dest`` (which must not exist yet; default:
    a new file in its backup folder) and record the copy there."""
    now = now or datetime.now(UTC)
    if not source.is_file():
        raise BackupError("no_database", source)
    home = folder(source)
    try:
        _private_folder(home)
    except OSError as exc:
        raise BackupError("failed", home, str(exc)) from exc
    if dest is None:
        stem = f"{source.stem}-{now:%Y%m%d-%H%M%S}"
        dest = home / f"{stem}.db"
        for n in range(2, 100):  # two in the same second
            if not dest.exists():
                break
            dest = home / f"{stem}-{n}.db"
    if dest.exists():
        raise BackupError("exists", dest)
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    try:
        _private_file(tmp)  # SQLite keeps the mode, and gives it to the journal too
        src = sqlite3.connect(source, timeout=30)
        try:
            dst = sqlite3.connect(tmp)
            try:
                # pages=-1: the whole database in one step, so one snapshot: a writer
                # committing meanwhile neither waits for us nor makes the copy restart.
                src.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode=DELETE")
                dst.commit()
            finally:
                dst.close()
        finally:
            src.close()
        info = inspect(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except (sqlite3.Error, OSError) as exc:
        raise BackupError("failed", source, str(exc)) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    done = DatabaseInfo(path=str(dest), version=info.version, counts=info.counts,
                        size=dest.stat().st_size)
    _record(home, source, done, now)
    return done


def _record(home: Path, source: Path, info: DatabaseInfo, now: datetime) -> None:
    line = json.dumps({"database": str(source.resolve()), "path": str(Path(info.path).resolve()),
                       "at": now.isoformat(), "size": info.size}, ensure_ascii=False)
    fd = os.open(home / RECORD, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


@dataclass(frozen=True, kw_only=True)
class BackupFile:
    """A copy of the database that gridbot made and that is still there."""

    path: str
    size: int
    at: datetime  # when it was written


def made_backups(database: Path) -> list[BackupFile]:
    """Every copy of ``database`` gridbot made that still exists, oldest first: the
    backups it recorded (wherever they were written), any in the backup folder, and the
    databases a restore moved aside (with their WAL)."""
    home = folder(database)
    found: dict[Path, BackupFile] = {}

    def add(path: Path) -> None:
        try:
            stat = path.stat()
        except OSError:
            return
        if path.is_file() and path.resolve() not in found:
            found[path.resolve()] = BackupFile(
                path=str(path), size=stat.st_size,
                at=datetime.fromtimestamp(stat.st_mtime, UTC))

    with contextlib.suppress(OSError):
        for line in (home / RECORD).read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                if Path(entry["database"]) == database.resolve():
                    add(Path(entry["path"]))
    with contextlib.suppress(OSError):
        for path in sorted(home.glob(f"{database.stem}-*.db")):
            add(path)
    with contextlib.suppress(OSError):
        for path in sorted(database.parent.glob(f"{database.name}.before-restore-*")):
            add(path)
    return sorted(found.values(), key=lambda b: (b.at, b.path))


def inspect(path: Path) -> DatabaseInfo:
    """Check that ``path`` is a whole, readable gridbot database; say what it holds."""
    if not path.is_file():
        raise BackupError("no_file", path)
    with open(path, "rb") as fh:
        if fh.read(len(_HEADER)) != _HEADER:
            raise BackupError("not_a_database", path)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError("not_a_database", path, str(exc)) from exc
    try:
        problems = [row[0] for row in db.execute("PRAGMA integrity_check(20)")]
        if problems != ["ok"]:
            raise BackupError("damaged", path, "; ".join(problems))
        tables = {row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in REQUIRED if t not in tables]
        if missing:
            raise BackupError("not_gridbot", path, ", ".join(missing))
        version = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
                             ).fetchone()[0]
        counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in COUNTED if t in tables}
    except sqlite3.DatabaseError as exc:
        raise BackupError("damaged", path, str(exc)) from exc
    finally:
        db.close()
    return DatabaseInfo(path=str(path), version=int(version), counts=counts,
                        size=path.stat().st_size)


def in_use(path: Path) -> bool:
    """Has any connection (another process, or this one) the database open right now?

    In WAL mode every open connection holds a shared lock on the WAL index; taking the
    database in exclusive locking mode needs all of them gone, so it fails at once
    (no waiting: ``timeout=0``) while a ``gridbot run`` is up, even an idle one.
    """
    if not path.exists():
        return False
    db = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("BEGIN EXCLUSIVE")
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        db.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        db.close()


@dataclass(frozen=True, kw_only=True)
class Restored:
    backup: DatabaseInfo
    kept: str | None
    before: DatabaseInfo | None


def restore(source: Path, target: Path, now: datetime) -> Restored:
    """Put the backup ``source`` in place of the database ``target``, keeping the old one."""
    info = inspect(source)
    latest = latest_version()
    if info.version > latest:
        raise BackupError("too_new", source, f"{info.version} > {latest}")
    if target.exists() and source.resolve() == target.resolve():
        raise BackupError("same_file", source)
    if in_use(target):
        raise BackupError("in_use", target)
    tmp = target.with_name(f".{target.name}.restoring-{os.getpid()}")
    try:
        _private_file(tmp)
        bak = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(tmp)
            try:
                bak.backup(dst, pages=-1)
            finally:
                dst.close()
        finally:
            bak.close()
        inspect(tmp)
    except (sqlite3.Error, OSError) as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise BackupError("failed", target, str(exc)) from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    before: DatabaseInfo | None = None
    kept: Path | None = None
    if target.exists():
        with contextlib.suppress(BackupError):
            before = inspect(target)
        # The old database is moved aside byte for byte (a damaged one too), with its
        # WAL, which may hold committed transactions; the shared-memory index is a cache.
        kept = target.with_name(f"{target.name}.before-restore-{now:%Y%m%d-%H%M%S}")
        if kept.exists():
            tmp.unlink()
            raise BackupError("exists", kept)
        os.replace(target, kept)
        kept.chmod(0o600)
        wal = target.with_name(target.name + "-wal")
        if wal.exists():
            os.replace(wal, kept.with_name(kept.name + "-wal"))
            kept.with_name(kept.name + "-wal").chmod(0o600)
        with contextlib.suppress(FileNotFoundError):
            target.with_name(target.name + "-shm").unlink()
    os.replace(tmp, target)
    return Restored(backup=info, kept=str(kept) if kept else None, before=before)
