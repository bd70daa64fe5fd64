"""Issue 10, a full disk and unbounded stored results, through the official client.

The flood stage is reached for real: a watermark asking for more free space than the disk
has, or a tiny tmpfs filled to the brim (mounted when the test runs as root, skipped with
the reason otherwise), where SQLite itself meets ENOSPC.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestClient
from elasticsearch import ApiError, AsyncElasticsearch

from conftest import ROOT, ServerProcess, assert_live, fill_to_the_brim, index_state
from service.__main__ import main
from service.app import create_app
from service.query.control import Control
from service.settings import Settings
from service.store.db import Database
from service.store.disk import FloodStageBlock

BLOCK = "blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];"
BEYOND_ANY_DISK = "1pb"  # an absolute free size larger than the disk: a real check, always past it


def blocked(*indices: str) -> str:
    return "".join(f"index [{name}] {BLOCK}" for name in indices)


@asynccontextmanager
async def serving(aiohttp_server: Any, aiohttp_client: Any, settings: Settings
                  ) -> AsyncIterator[tuple[AsyncElasticsearch, TestClient]]:
    """The real app on a real socket with these settings; closed (database too) on exit."""
    server = await aiohttp_server(create_app(settings))
    http = await aiohttp_client(server)
    es = AsyncElasticsearch(str(server.make_url("/")), request_timeout=30, max_retries=0)
    try:
        yield es, http
    finally:
        await es.close()
        await http.close()
        await server.close()


def base_settings(data_dir: Path, **changes: Any) -> Settings:
    return Settings(data_dir=data_dir, port=0, log_format="json", log_level="warning", **changes)


async def error_of(call: Any) -> tuple[int, str, str]:
    with pytest.raises(ApiError) as info:
        await call
    error = info.value.body["error"]
    return info.value.meta.status, error["type"], error["reason"]


def docs(n: int, start: int = 0) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    for i in range(start, start + n):
        ops.append({"index": {"_id": str(i)}})
        ops.append({"message": f"event {i:010d}", "n": i})
    return ops


# --- the flood stage, by the watermark ------------------------------------------------------

async def test_flood_stage_blocks_writes_keeps_reads_and_deletes(aiohttp_server, aiohttp_client,
                                                                  tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with serving(aiohttp_server, aiohttp_client, base_settings(data)) as (es, _):
        await es.bulk(operations=docs(10), index="logs", refresh=True)
        kept = await es.esql.async_query(query="FROM logs | STATS n = COUNT(*) | LIMIT 1", keep_on_completion=True,
                                         wait_for_completion_timeout="10s")
        before = await index_state(es, "logs")

    flood = base_settings(data, disk_watermark_flood_stage=BEYOND_ANY_DISK)
    async with serving(aiohttp_server, aiohttp_client, flood) as (es, http):
        block = (429, "cluster_block_exception", blocked("logs"))
        assert await error_of(es.index(index="logs", id="new", document={"message": "x"})) == block
        assert await error_of(es.create(index="logs", id="new", document={"message": "x"})) == block
        assert await error_of(es.update(index="logs", id="1", doc={"message": "y"})) == block
        assert await error_of(es.indices.put_mapping(index="logs", properties={"tag": {"type": "keyword"}})) == block
        assert await error_of(es.indices.create(index="fresh")) == (429, "cluster_block_exception", blocked("fresh"))
        assert await error_of(es.esql.async_query(query="ROW a = 1 | LIMIT 1", keep_on_completion=True)) == \
            (429, "cluster_block_exception", blocked(".async-search"))
        assert await index_state(es, "logs") == before
        assert not await es.indices.exists(index="fresh")

        bulk = await es.bulk(operations=[{"index": {"_index": "logs", "_id": "b"}}, {"message": "x"},
                                         {"delete": {"_index": "logs", "_id": "2"}}])
        assert bulk["errors"] is True
        assert bulk["items"][0]["index"]["status"] == 429
        assert bulk["items"][0]["index"]["error"] == {"type": "cluster_block_exception", "reason": blocked("logs")}
        assert bulk["items"][1]["delete"]["status"] == 200 and bulk["items"][1]["delete"]["result"] == "deleted"

        # reads and searches go on
        assert (await es.get(index="logs", id="1"))["_source"]["n"] == 1
        assert (await es.count(index="logs"))["count"] == 9
        assert (await es.esql.query(query="FROM logs | STATS n = COUNT(*) | LIMIT 1"))["values"] == [[9]]
        assert (await es.esql.async_query(query="ROW a = 1 | LIMIT 1", wait_for_completion_timeout="10s"))["values"] == [[1]]
        assert (await es.esql.async_query_get(id=kept["id"]))["values"] == [[10]]
        await assert_live(http)

        # deletes go on: they are how space comes back
        assert (await es.delete(index="logs", id="3"))["result"] == "deleted"
        assert (await es.esql.async_query_delete(id=kept["id"]))["acknowledged"] is True
        assert (await es.indices.delete(index="logs"))["acknowledged"] is True
        assert not await es.indices.exists(index="logs")
        await assert_live(http)


async def test_flood_stage_lifts_itself_when_space_returns(aiohttp_server, aiohttp_client, tiny_disk: Path) -> None:
    settings = base_settings(tiny_disk / "data", disk_watermark_flood_stage="1mb", disk_check_interval_ms=0,
                             disk_reserve_bytes=0)
    async with serving(aiohttp_server, aiohttp_client, settings) as (es, http):
        await es.index(index="logs", id="1", document={"message": "before"})
        filler = fill_to_the_brim(tiny_disk, leave=512 * 1024)
        assert await error_of(es.index(index="logs", id="2", document={"message": "during"})) == \
            (429, "cluster_block_exception", blocked("logs"))
        await assert_live(http)
        filler.unlink()
        assert (await es.index(index="logs", id="2", document={"message": "after"}))["result"] == "created"
        await es.indices.refresh(index="logs")
        assert (await es.count(index="logs"))["count"] == 2


async def test_deleting_an_index_lifts_the_block(aiohttp_server, aiohttp_client, tiny_disk: Path) -> None:
    """SQLite keeps a dropped table's pages in its file, but reuses them before growing it:
    they count as free space."""
    data = tiny_disk / "data"
    async with serving(aiohttp_server, aiohttp_client, base_settings(data, disk_reserve_bytes=0)) as (es, _):
        await es.bulk(operations=[x for i in range(8) for x in ({"index": {}}, {"blob": f"{i}" * 80_000})],
                      index="big", refresh=True)
        await es.index(index="small", id="1", document={"message": "x"})
    fill_to_the_brim(tiny_disk, leave=768 * 1024)
    settings = base_settings(data, disk_watermark_flood_stage="1mb", disk_watermark_high="1200kb",
                             disk_check_interval_ms=0, disk_reserve_bytes=0)
    async with serving(aiohttp_server, aiohttp_client, settings) as (es, _):
        assert (await error_of(es.index(index="small", id="2", document={"message": "x"})))[0] == 429
        await es.indices.delete(index="big")
        assert (await es.index(index="small", id="2", document={"message": "x"}))["result"] == "created"


# --- a real full disk: SQLITE_FULL between two checks ---------------------------------------

async def test_a_full_disk_answers_429_rolls_back_and_still_deletes(aiohttp_server, aiohttp_client,
                                                                    tiny_disk: Path) -> None:
    data = tiny_disk / "data"
    # a watermark that never blocks: only SQLite's own ENOSPC stops the writes
    settings = base_settings(data, disk_watermark_flood_stage="0b", disk_check_interval_ms=0,
                             disk_reserve_bytes=256 * 1024)
    async with serving(aiohttp_server, aiohttp_client, settings) as (es, http):
        await es.index(index="keep", id="1", document={"message": "x"}, refresh=True)
        await es.indices.create(index="logs")
        failure = None
        for batch in range(200):
            count = (await es.count(index="logs"))["count"]
            try:
                resp = await es.bulk(operations=[x for i in range(100) for x in
                                                 ({"index": {}}, {"message": f"{batch}-{i} " + "x" * 2000})],
                                     index="logs", refresh=True)
            except ApiError as exc:
                failure = exc
                break
            assert not resp["errors"]
        assert failure is not None, "the disk never filled"
        assert failure.meta.status == 429
        assert failure.body["error"]["type"] == "cluster_block_exception"
        assert failure.body["error"]["reason"] == blocked("logs")
        await assert_live(http)
        await es.indices.refresh(index="logs")
        assert (await es.count(index="logs"))["count"] == count  # the failed bulk left nothing behind
        assert (await es.get(index="keep", id="1"))["found"] is True
        assert (await es.indices.delete(index="logs"))["acknowledged"] is True  # on a full disk
        await assert_live(http)
    conn = sqlite3.connect(data / "esquire.db")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert [name for (name,) in conn.execute("SELECT name FROM indices")] == ["keep"]
    conn.close()


async def test_a_transaction_sqlite_cancels_on_a_full_disk_leaves_nothing_behind(tiny_disk: Path) -> None:
    """On SQLITE_FULL in the middle of a statement SQLite rolls the whole transaction back; a
    statement already queued behind it (as a bulk queues its batches) must not then run in
    autocommit mode and keep half the request."""
    db = Database(tiny_disk / "data" / "esquire.db")  # no watermark: only ENOSPC stops it
    await db.open()
    try:
        async with db.write() as conn:
            await conn.execute("CREATE TABLE t (v BLOB)")
        await db.writer.execute("PRAGMA cache_size = 8")  # spill to the WAL mid-transaction, as a big bulk does
        with pytest.raises(FloodStageBlock):
            async with db.write(indices=["t"]) as conn:
                queued = [asyncio.ensure_future(conn.executemany("INSERT INTO t VALUES (?)", [(b"x" * 3000,)] * 2000)),
                          asyncio.ensure_future(conn.executemany("INSERT INTO t VALUES (?)", [(b"late",)] * 10))]
                first, late = await asyncio.gather(*queued, return_exceptions=True)
                assert isinstance(late, sqlite3.DatabaseError) and str(late) == "not authorized"
                raise first
        async with db.read() as conn:
            async with conn.execute("SELECT count(*) FROM t") as cur:
                assert (await cur.fetchone())[0] == 0
        async with db.write(grows=False) as conn:  # and the writer still works
            await conn.execute("DELETE FROM t")
    finally:
        await db.close()


def _serve(data: Path, env: dict[str, str], port: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service", "serve", "--port", str(port), "--data-dir", str(data)],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_start_up_on_a_full_disk_serves_reads_with_writes_blocked(tiny_disk: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESQUIRE_DISK_RESERVE_BYTES", str(256 * 1024))
    server = ServerProcess(tiny_disk / "data")
    server.log = tiny_disk.parent / "server.log"
    es = server.start()
    es.index(index="logs", id="1", document={"message": "x"}, refresh=True)
    assert server.stop() == 0
    fill_to_the_brim(tiny_disk)

    es = server.start()  # the reserve gives the -shm and -wal files their room
    try:
        es = es.options(max_retries=0)
        assert es.count(index="logs")["count"] == 1
        assert es.esql.query(query="FROM logs | KEEP message | LIMIT 10")["values"] == [["x"]]
        with pytest.raises(ApiError) as info:
            es.index(index="logs", id="2", document={"message": "y"})
        assert info.value.meta.status == 429 and info.value.body["error"]["reason"] == blocked("logs")
        assert es.indices.delete(index="logs")["acknowledged"] is True
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_start_up_on_a_full_disk_without_room_exits_with_one_line(tiny_disk: Path) -> None:
    fill_to_the_brim(tiny_disk)
    done = _serve(tiny_disk / "data", {"ESQUIRE_LOG_LEVEL": "error"})
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"esquire: cannot start: the disk of {tiny_disk / 'data'} is full (0 bytes free): free some space on it "
        "or use another data directory"]


def test_bad_disk_settings_stop_the_start_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ESQUIRE_DISK_WATERMARK_FLOOD_STAGE", "95")
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == ("esquire: disk_watermark_flood_stage must be a percentage (95%), a ratio "
                                       "(0.95) or a byte size (500mb), got '95'\n")
    monkeypatch.setenv("ESQUIRE_DISK_WATERMARK_FLOOD_STAGE", "500mb")
    monkeypatch.setenv("ESQUIRE_DISK_WATERMARK_HIGH", "90%")
    assert main(["serve"]) == 2
    assert "must both be percentages or both byte sizes" in capsys.readouterr().err


# --- bounded stored async results ------------------------------------------------------------

async def test_beyond_the_stored_search_cap_new_searches_are_refused_old_ones_kept(
        aiohttp_server, aiohttp_client, tmp_path: Path) -> None:
    settings = base_settings(tmp_path / "data", max_stored_searches=2)
    async with serving(aiohttp_server, aiohttp_client, settings) as (es, http):
        kept = [await es.esql.async_query(query=f"ROW a = {i} | LIMIT 1", keep_on_completion=True,
                                          wait_for_completion_timeout="10s") for i in range(2)]
        status, kind, reason = await error_of(es.esql.async_query(query="ROW a = 2 | LIMIT 1", keep_on_completion=True))
        assert (status, kind) == (429, "es_rejected_execution_exception")
        assert reason.startswith("rejected execution of async search: [2] async searches are stored")
        await assert_live(http)
        for i, search in enumerate(kept):  # keep old
            assert (await es.esql.async_query_get(id=search["id"]))["values"] == [[i]]
        # a search that finishes in time is not stored, so it is never refused
        assert (await es.esql.async_query(query="ROW a = 3 | LIMIT 1", wait_for_completion_timeout="10s"))["values"] == [[3]]
        await es.esql.async_query_delete(id=kept[0]["id"])
        again = await es.esql.async_query(query="ROW a = 4 | LIMIT 1", keep_on_completion=True, wait_for_completion_timeout="10s")
        assert (await es.esql.async_query_get(id=again["id"]))["values"] == [[4]]


async def test_a_search_past_the_byte_cap_stores_what_fits_and_ends_partial(
        aiohttp_server, aiohttp_client, tmp_path: Path) -> None:
    # each row is stored as the JSON ["event 000000000N"]: 20 bytes, so 100 rows fill 2000 bytes
    settings = base_settings(tmp_path / "data", max_stored_search_bytes=2000)
    async with serving(aiohttp_server, aiohttp_client, settings) as (es, http):
        await es.bulk(operations=docs(300), index="logs", refresh=True)
        query = "FROM logs | SORT n | KEEP message | LIMIT 300"
        resp = await es.esql.async_query(query=query, keep_on_completion=True, wait_for_completion_timeout="10s")
        stored = await es.esql.async_query_get(id=resp["id"])
        for answer in (resp, stored):
            assert answer["is_partial"] is True
            assert answer["values"] == [[f"event {i:010d}"] for i in range(100)]
            (failure,) = answer["_clusters"]["details"]["(local)"]["failures"]
            assert failure["reason"] == {
                "type": "illegal_argument_exception",
                "reason": "Can't store an async search response larger than [2000] bytes. This limit can be set by "
                          "changing the [max_stored_search_bytes] setting."}
        status, kind, reason = await error_of(es.esql.async_query(query=query, keep_on_completion=True))
        assert (status, kind) == (429, "es_rejected_execution_exception")
        assert "stored async search results take [2000] bytes" in reason
        await assert_live(http)
        await es.esql.async_query_delete(id=resp["id"])  # the budget comes back with the delete
        small = await es.esql.async_query(query="ROW a = 1 | LIMIT 1", keep_on_completion=True, wait_for_completion_timeout="10s")
        assert (await es.esql.async_query_get(id=small["id"]))["is_partial"] is False


async def test_a_running_search_stops_storing_at_the_byte_cap(aiohttp_server, aiohttp_client, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    settings = base_settings(tmp_path / "data", max_stored_search_bytes=30_000)
    async with serving(aiohttp_server, aiohttp_client, settings) as (es, http):
        await es.bulk(operations=docs(5000), index="logs", refresh=True)
        monkeypatch.setattr(Control, "pause_s", 0.01)  # stored from the start, rows written while it runs
        resp = await es.esql.async_query(query="FROM logs | KEEP message | LIMIT 5000",
                                         wait_for_completion_timeout="0s")
        assert resp["is_running"] is True
        await assert_live(http)
        done = await es.esql.async_query_get(id=resp["id"], wait_for_completion_timeout="30s")
        assert done["is_running"] is False and done["is_partial"] is True
        assert done["values"] == [[f"event {i:010d}"] for i in range(1500)]  # 30000 bytes of 20-byte rows
        (failure,) = done["_clusters"]["details"]["(local)"]["failures"]
        assert failure["reason"]["reason"].startswith("Can't store an async search response larger than [30000]")
