"""The store: migrations on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from service.store.migrations import Migration, MigrationError, load_migrations, migrate

EXPECTED_TABLES = {
    "schema_migrations": ["version", "name", "applied_ms"],
    "node_info": ["key", "value"],
    "indices": ["id", "name", "uuid", "table_name", "created_ms", "settings", "mappings", "columns", "next_seq_no",
                "multi_valued"],
    "searches": ["id", "kind", "state", "keep_on_completion", "created_ms", "expires_ms", "headers", "response",
                 "error", "row_count", "bytes", "owner", "description", "target", "finished_ms"],
    "search_rows": ["search_id", "seq", "row"],
    "cluster_settings": ["name", "value"],
    "background_tasks": ["id", "owner", "state", "created_ms", "started_ms", "finished_ms", "keep_alive_ms", "partial",
                         "row_count", "progress", "request", "error"],
    "background_task_logs": ["task_id", "seq", "ts_ms", "level", "message", "command"],
    "security_users": ["username", "password_hash", "roles", "full_name", "email", "metadata", "enabled", "reserved",
                       "changed_ms"],
    "security_roles": ["name", "descriptor", "changed_ms"],
    "security_api_keys": ["id", "name", "key_hash", "owner", "realm", "realm_type", "created_ms", "expires_ms",
                          "invalidated_ms", "role_descriptors", "limited_by", "metadata"],
}


async def test_migrating_an_empty_database_yields_the_expected_schema(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "m.db", isolation_level=None) as conn:
        version = await migrate(conn)
    assert version == len(load_migrations())
    conn = sqlite3.connect(tmp_path / "m.db")
    tables = {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    assert tables == set(EXPECTED_TABLES)
    for table, columns in EXPECTED_TABLES.items():
        assert [row[1] for row in conn.execute(f"PRAGMA table_info({table})")] == columns
    assert [v for (v,) in conn.execute("SELECT version FROM schema_migrations")] == list(range(1, version + 1))


async def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "m.db", isolation_level=None) as conn:
        first = await migrate(conn)
        assert await migrate(conn) == first


async def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "m.db", isolation_level=None) as conn:
        await migrate(conn)
        await conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
        with pytest.raises(MigrationError, match="newer than this Esquire supports"):
            await migrate(conn)


async def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    broken = [Migration(1, "ok", "CREATE TABLE a (x INTEGER);"),
              Migration(2, "broken", "CREATE TABLE b (x INTEGER); INSERT INTO nope VALUES (1);")]
    async with aiosqlite.connect(tmp_path / "m.db", isolation_level=None) as conn:
        with pytest.raises(sqlite3.OperationalError):
            await migrate(conn, broken)
        async with conn.execute("SELECT name FROM sqlite_master WHERE name IN ('a', 'b')") as cur:
            assert [r[0] for r in await cur.fetchall()] == ["a"]
        async with conn.execute("SELECT max(version) FROM schema_migrations") as cur:
            assert (await cur.fetchone())[0] == 1
