"""``Index.multi_valued``: which columns have ever held a multi-value, through every write path.

A column outside the set holds only scalars or NULL, which is what lets a query take
SQLite's answer for it as exact; so the set must never miss a column that holds one, must
not count a write that was rolled back, and must survive a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import re
import sqlite3
from pathlib import Path
from typing import AsyncIterator

import aiosqlite
import orjson
from aiohttp.test_utils import TestServer
from elasticsearch import AsyncElasticsearch

from service import keys
from service.app import create_app
from service.settings import Settings
from service.store.catalog import Catalog
from service.store.documents import BulkOp
from service.store.migrations import load_migrations

from conftest import EsTestServer


def flags(server: TestServer, index: str) -> set[str]:
    return server.app[keys.CATALOG].get(index).multi_valued


def stored_flags(settings: Settings, index: str) -> str | None:
    conn = sqlite3.connect(settings.db_path)
    try:
        (value,) = conn.execute("SELECT multi_valued FROM indices WHERE name = ?", (index,)).fetchone()
    finally:
        conn.close()
    return value


def blob_columns(settings: Settings, index: str) -> set[str]:
    """What the table itself holds: the paths of the columns with a BLOB in them."""
    conn = sqlite3.connect(settings.db_path)
    try:
        table, columns = conn.execute("SELECT table_name, columns FROM indices WHERE name = ?", (index,)).fetchone()
        return {path for path, column in orjson.loads(columns).items()
                if conn.execute(f'SELECT 1 FROM "{table}" WHERE typeof("{column}") = \'blob\' LIMIT 1').fetchone()}
    finally:
        conn.close()


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[TestServer, AsyncElasticsearch]]:
    server = EsTestServer(create_app(settings))
    await server.start_server()
    client = AsyncElasticsearch(str(server.make_url("/")), request_timeout=30)
    try:
        yield server, client
    finally:
        await client.close()
        await server.close()


async def test_bulk_index_flags_only_columns_that_hold_a_multi_value(
        es: AsyncElasticsearch, server: TestServer, settings: Settings) -> None:
    await es.indices.create(index="t", mappings={"properties": {"tag": {"type": "keyword"},
                                                               "n": {"type": "long"}}})
    resp = await es.bulk(index="t", operations=[
        {"index": {}}, {"tag": "a", "n": 1, "msg": "one"},
        {"index": {}}, {"tag": ["b", "b"], "n": [2, 3]},  # keyword doc values de-duplicate: a scalar
        {"index": {}}, {"msg": ["x", "y"]},  # a new text field with its keyword multi-field
    ])
    assert not resp["errors"]
    assert flags(server, "t") == {"n", "msg", "msg.keyword"} == blob_columns(settings, "t")
    assert stored_flags(settings, "t") == '["msg","msg.keyword","n"]'


async def test_a_multi_field_follows_its_own_values(es: AsyncElasticsearch, server: TestServer) -> None:
    """``message.keyword`` derives from ``message``: multi-valued when its own values are."""
    await es.index(index="t", id="1", document={"message": ["long " * 60, "short"]})  # keyword ignores > 256
    assert flags(server, "t") == {"message"}
    await es.index(index="t", id="2", document={"message": ["p", "q"]})
    assert flags(server, "t") == {"message", "message.keyword"}


async def test_every_write_path_sets_the_flag(es: AsyncElasticsearch, server: TestServer,
                                              settings: Settings) -> None:
    await es.indices.create(index="t", mappings={"properties": {f"f{i}": {"type": "long"} for i in range(8)}})
    await es.bulk(index="t", operations=[{"create": {"_id": "c"}}, {"f0": [1, 2]}])
    assert flags(server, "t") == {"f0"}
    await es.bulk(index="t", operations=[{"update": {"_id": "c"}}, {"doc": {"f1": [1, 2]}}])
    assert flags(server, "t") == {"f0", "f1"}
    await es.bulk(index="t", operations=[{"update": {"_id": "u"}}, {"doc": {"f2": [1, 2]}, "doc_as_upsert": True}])
    assert flags(server, "t") == {"f0", "f1", "f2"}
    await es.index(index="t", id="p", document={"f3": [1, 2]})  # PUT /t/_doc/p
    await es.index(index="t", document={"f4": [1, 2]})  # POST /t/_doc
    await es.create(index="t", id="q", document={"f5": [1, 2]})  # PUT /t/_create/q
    await es.update(index="t", id="p", doc={"f6": [3, 4]})
    assert flags(server, "t") == {f"f{i}" for i in range(7)}
    await es.indices.put_mapping(index="t", properties={"late": {"type": "keyword"}})
    assert stored_flags(settings, "t") == '["f0","f1","f2","f3","f4","f5","f6"]'  # a mapping update keeps them
    await es.index(index="t", id="l", document={"late": ["x", "y"], "dyn": {"deep": [1.5, 2.5]}})
    assert flags(server, "t") == {*(f"f{i}" for i in range(7)), "late", "dyn.deep"} == blob_columns(settings, "t")


async def test_flags_are_sticky_and_dropped_with_the_index(es: AsyncElasticsearch, server: TestServer) -> None:
    await es.index(index="t", id="1", document={"n": [1, 2]})
    await es.index(index="t", id="1", document={"n": 3})  # overwritten, deleted: the flag stays
    await es.delete(index="t", id="1")
    assert flags(server, "t") == {"n"}
    await es.indices.delete(index="t")
    await es.index(index="t", id="1", document={"n": 4})
    assert flags(server, "t") == set()


async def test_a_rejected_document_leaves_no_flag(es: AsyncElasticsearch, server: TestServer,
                                                  settings: Settings) -> None:
    await es.indices.create(index="t", mappings={"properties": {"n": {"type": "long"}}})
    resp = await es.bulk(index="t", operations=[
        {"index": {"_id": "1"}}, {"tags": ["a", "b"], "n": "not a number"},
        {"index": {"_id": "2"}}, {"n": [1, 2], "m": {"x": 1}, "m.x": [{"y": 1}]},
        {"index": {"_index": "new"}}, {"k": ["a", "b"], "n": [1, {"x": 2}]},
    ])
    assert [item["index"]["status"] for item in resp["items"]] == [400, 400, 400]
    assert flags(server, "t") == set()
    assert stored_flags(settings, "t") == "[]"
    assert "new" not in server.app[keys.CATALOG].indices


async def test_a_rolled_back_bulk_leaves_no_flag(es: AsyncElasticsearch, server: TestServer,
                                                 settings: Settings) -> None:
    """The flag lives and dies with the write's transaction: a bulk cancelled after the
    multi-value was applied (in memory) leaves neither the rows nor the flag."""
    await es.index(index="t", id="0", document={"n": 1, "tags": "a"}, refresh=True)
    ops = [BulkOp("index", "t", "multi", source={"tags": ["a", "b"]}, raw=b'{"tags":["a","b"]}')]
    ops += [BulkOp("index", "t", f"d{i}", source={"n": i}, raw=b'{"n":%d}' % i) for i in range(50_000)]
    index = server.app[keys.CATALOG].get("t")
    task = asyncio.ensure_future(server.app[keys.DOCUMENTS].bulk(ops))
    while "tags" not in index.multi_valued and not task.done():
        await asyncio.sleep(0)
    assert not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert flags(server, "t") == set()
    assert stored_flags(settings, "t") == "[]"
    assert (await es.count(index="t"))["count"] == 1


async def test_flags_survive_a_restart(settings: Settings) -> None:
    async with running(settings) as (server, es):
        await es.index(index="t", id="1", document={"a": [1, 2], "b": 1})
    async with running(settings) as (server, es):
        assert flags(server, "t") == {"a"}
        await es.index(index="t", id="2", document={"b": [1, 2]})
    async with running(settings) as (server, es):
        assert flags(server, "t") == {"a", "b"}


def _make_it_old(settings: Settings) -> None:
    """The database as Esquire left it before migration 0004: no flags column, and none of
    the tables or columns later migrations add (they run again on the next start)."""
    later = [m for m in load_migrations() if m.version > 4]
    conn = sqlite3.connect(settings.db_path, isolation_level=None)
    try:
        conn.execute("ALTER TABLE indices DROP COLUMN multi_valued")
        for migration in reversed(later):
            for table, column in re.findall(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", migration.sql):
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
            for table in re.findall(r"CREATE TABLE (\w+)", migration.sql):
                conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM schema_migrations WHERE version >= 4")
    finally:
        conn.close()


async def test_a_database_made_before_the_flags_gets_them_from_its_tables(settings: Settings) -> None:
    async with running(settings) as (server, es):
        await es.index(index="t", id="1", document={"a": [1, 2], "b": 1, "s": ["x", "y"]})
        await es.index(index="empty", id="1", document={"a": 1})
        await es.indices.create(index="none")
    _make_it_old(settings)
    async with running(settings) as (server, es):
        assert flags(server, "t") == {"a", "s", "s.keyword"}
        assert flags(server, "empty") == set() and flags(server, "none") == set()
        assert stored_flags(settings, "t") == '["a","s","s.keyword"]'  # computed once, then kept
        assert stored_flags(settings, "none") == "[]"


async def test_a_catalog_read_before_the_flags_are_recorded_computes_them(
        es: AsyncElasticsearch, server: TestServer, settings: Settings) -> None:
    """Never a guess: an index whose flags are unknown (NULL) is looked at, not taken as empty."""
    await es.index(index="t", id="1", document={"a": [1, 2], "b": 1})
    async with aiosqlite.connect(settings.db_path) as conn:
        await conn.execute("UPDATE indices SET multi_valued = NULL")
        await conn.commit()
        catalog = Catalog()
        await catalog.load(conn)
    assert catalog.get("t").multi_valued == {"a"}


async def test_flags_travel_to_query_workers(es: AsyncElasticsearch, server: TestServer) -> None:
    await es.index(index="t", id="1", document={"a": [1, 2], "b": 1})
    part = pickle.loads(pickle.dumps(server.app[keys.CATALOG].subset(["t"])))
    assert part.get("t").multi_valued == {"a"}
    assert part.get("t").columns == server.app[keys.CATALOG].get("t").columns
