"""Numbered SQL migrations (``migrations/NNNN_name.sql``), applied in order at start-up.

Each file runs inside its own explicit transaction together with the row that records
it, so a failing migration leaves the database as it was. A database whose recorded
version is newer than the newest file is refused.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import aiosqlite
import structlog

log = structlog.get_logger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_dir() -> Traversable:
    """The SQL files as package data (``service/migrations`` links to the repository's
    top-level ``migrations/``), read the same way from a checkout, an editable install
    and an installed wheel."""
    return resources.files("service") / "migrations"


def load_migrations(directory: Traversable | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    if not directory.is_dir():  # a wheel built without its package data
        raise MigrationError(f"cannot find the migrations directory {directory}")
    found = []
    for path in sorted((e for e in directory.iterdir() if e.name.endswith(".sql")), key=lambda e: e.name):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file name not of the form NNNN_name.sql: {path.name}")
        found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migrations must be numbered 1..N without gaps, found {versions}")
    return found


def refuse_newer(current: int, migrations: list[Migration]) -> None:
    """Raise ``MigrationError`` when schema version ``current`` is past the newest of ``migrations``:
    a database written by a later Esquire, which this one must not touch."""
    newest = migrations[-1].version if migrations else 0
    if current > newest:
        raise MigrationError(
            f"database schema version {current} is newer than this Esquire supports ({newest}); "
            "upgrade Esquire or use another data directory"
        )


async def migrate(conn: aiosqlite.Connection, migrations: list[Migration] | None = None) -> int:
    """Apply every pending migration; return the schema version now in force."""
    migrations = load_migrations() if migrations is None else migrations
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)"
    )
    async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cur:
        (current,) = await cur.fetchone()  # type: ignore[misc]
    refuse_newer(current, migrations)
    newest = migrations[-1].version if migrations else 0
    for migration in migrations[current:]:
        # executescript() commits any open transaction first, so the script carries its
        # own BEGIN/COMMIT and the version row is written inside the same transaction.
        script = (
            f"BEGIN IMMEDIATE;\n{migration.sql}\n;"
            f"INSERT INTO schema_migrations(version, name, applied_ms) VALUES "
            f"({migration.version}, '{migration.name}', {int(time.time() * 1000)});\nCOMMIT;"
        )
        try:
            await conn.executescript(script)
        except Exception:
            if conn.in_transaction:
                await conn.rollback()
            raise
        log.info("migration_applied", version=migration.version, name=migration.name)
    return max(current, newest)
