"""``esquire load`` through a subprocess against a real server: each input format plain and
gzipped (told by its bytes, not its name), stdin, CSV values mapped by the index, an
idempotent re-run with --id-field, failures reported, a resume after Ctrl-C, the progress
bar on a terminal, and retries while the service is busy: documents refused by a disk past
its flood stage (a real tiny filesystem), a 503 from a gateway in front of the service."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import io
from pathlib import Path
from typing import Any, AsyncIterator

import orjson
import pytest
from elasticsearch import AsyncElasticsearch

from aiohttp import ClientSession, web

from cli_process import EVENTS_MAPPING, InTerminal, esquire, event
from conftest import fill_to_the_brim, running
from service.settings import Settings, replace

DOCS = [event(i) for i in range(7)]
LOADED = [[i, f"h{i % 5}", f"2024-05-01T00:00:0{i}.000Z"] for i in range(7)]  # DOCS as _rows reads them


def _ndjson(docs: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(d) + b"\n" for d in docs)


def _csv(docs: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["@timestamp", "event.category", "host.name", "bytes"])
    writer.writerows([d["@timestamp"], d["event"]["category"], d["host"]["name"], d["bytes"]] for d in docs)
    return out.getvalue().encode()


ENCODE = {"ndjson": _ndjson, "json": lambda docs: orjson.dumps(docs, option=orjson.OPT_INDENT_2), "csv": _csv}


async def _rows(es: AsyncElasticsearch, index: str) -> list[list[Any]]:
    resp = await es.esql.query(query=f"FROM {index} | KEEP bytes, host.name, @timestamp | SORT bytes | LIMIT 10000")
    return resp["values"]


@pytest.mark.parametrize("fmt", list(ENCODE))
@pytest.mark.parametrize("zipped", [False, True], ids=["plain", "gzip"])
async def test_each_format_loads(es: AsyncElasticsearch, server, tmp_path: Path, fmt: str, zipped: bool) -> None:
    await es.indices.create(index="events", mappings=EVENTS_MAPPING)  # CSV's strings become its types
    data = ENCODE[fmt](DOCS)
    path = tmp_path / "input.data"  # no telling name: the content says what it is
    path.write_bytes(gzip.compress(data) if zipped else data)
    done = await asyncio.to_thread(esquire, "load", "--url", str(server.make_url("/")), "--index", "events",
                                   "--batch", "3", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("loaded 7 documents into events in ") and done.stdout == ""
    assert await _rows(es, "events") == LOADED


async def test_stdin_and_several_inputs(es: AsyncElasticsearch, server, tmp_path: Path) -> None:
    await es.indices.create(index="events", mappings=EVENTS_MAPPING)
    (tmp_path / "a.csv").write_bytes(_csv(DOCS[:3]))
    done = await asyncio.to_thread(esquire, "load", "--url", str(server.make_url("/")), "--index", "events",
                                   str(tmp_path / "a.csv"), "-", stdin=gzip.compress(_ndjson(DOCS[3:])))
    assert done.returncode == 0, done.stderr
    assert [row[0] for row in await _rows(es, "events")] == list(range(7))


async def test_id_field_makes_a_rerun_idempotent(es: AsyncElasticsearch, server, tmp_path: Path) -> None:
    docs = [{**d, "event": {"id": f"e{d['bytes']}", "category": "process"}} for d in DOCS]
    path = tmp_path / "events.ndjson"
    path.write_bytes(_ndjson(docs))
    args = ("load", "--url", str(server.make_url("/")), "--index", "events", "--id-field", "event.id", str(path))
    for _ in range(2):
        done = await asyncio.to_thread(esquire, *args)
        assert done.returncode == 0, done.stderr
    await es.indices.refresh(index="events")
    assert (await es.count(index="events"))["count"] == 7
    found = await es.get(index="events", id="e3")
    assert found["_source"]["bytes"] == 3 and found["_version"] == 2  # replaced, not added


async def test_failures_are_counted_and_shown(es: AsyncElasticsearch, server, tmp_path: Path) -> None:
    await es.indices.create(index="events", mappings=EVENTS_MAPPING)
    path = tmp_path / "events.ndjson"
    path.write_bytes(b'{"bytes": 1}\nnot json\n[1]\n{"bytes": "many"}\n\n{"bytes": 2}\n')
    done = await asyncio.to_thread(esquire, "load", "--url", str(server.make_url("/")), "--index", "events",
                                   str(path))
    assert done.returncode == 1
    summary, *failures = done.stderr.splitlines()
    assert summary.startswith("loaded 2 documents into events in ") and summary.endswith("; 3 failed")
    assert [f.split(": ")[0] for f in failures] == [f"  {path}:2", f"  {path}:3", f"  {path}:4"]
    assert "not a JSON object" in failures[1] and "document_parsing_exception" in failures[2]


async def test_a_broken_json_array_stops_the_load(server, tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_bytes(b'[{"bytes": 1}, {"bytes": 2} {"bytes": 3}]')
    done = await asyncio.to_thread(esquire, "load", "--url", str(server.make_url("/")), "--index", "events",
                                   str(path))
    assert done.returncode == 1
    assert f"esquire load: {path}: element 2: expected , or ] after it: stopped in {path}" in done.stderr


async def test_resume_after_ctrl_c_goes_on_after_the_last_acknowledged_batch(es: AsyncElasticsearch, server,
                                                                           tmp_path: Path) -> None:
    n = 3000
    path = tmp_path / "events.ndjson.gz"
    path.write_bytes(gzip.compress(_ndjson([{**event(i), "n": i} for i in range(n)])))
    checkpoint = tmp_path / "load.checkpoint"
    args = ("load", "--url", str(server.make_url("/")), "--index", "events", "--id-field", "n", "--batch", "5",
            "--resume", str(checkpoint), str(path))
    run = InTerminal(*args)
    await asyncio.to_thread(run.wait_for, lambda frames: checkpoint.exists())
    run.interrupt()
    status, _, tty = await asyncio.to_thread(run.finish)
    assert status == 130, tty
    saved = orjson.loads(checkpoint.read_bytes())
    assert 0 < saved["loaded"] < n and saved["items"] == saved["loaded"]
    assert f"esquire load: interrupted: stopped in {path} after item {saved['items']:,}; run again with --resume" \
        in tty
    done = await asyncio.to_thread(esquire, *args)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"loaded {n:,} documents into events ({saved['loaded']:,} before this run) in ")
    assert not checkpoint.exists()
    await es.indices.refresh(index="events")
    assert (await es.count(index="events"))["count"] == n
    # the first batch went once, and the last: the resumed run did not send again what was acknowledged
    assert [(await es.get(index="events", id=str(i)))["_version"] for i in (0, n - 1)] == [1, 1]


async def test_a_checkpoint_of_another_load_is_refused(server, tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(_ndjson(DOCS))
    checkpoint = tmp_path / "load.checkpoint"
    checkpoint.write_bytes(orjson.dumps({"index": "other", "inputs": [{"name": str(path), "size": 1}], "file": 0,
                                         "items": 5, "loaded": 5, "failed": 0}))
    done = await asyncio.to_thread(esquire, "load", "--url", str(server.make_url("/")), "--index", "events",
                                   "--resume", str(checkpoint), str(path))
    assert done.returncode == 1 and "the checkpoint of another load (index other" in done.stderr


async def test_the_progress_bar_shows_bytes_and_documents(es: AsyncElasticsearch, server, tmp_path: Path) -> None:
    n = 20000
    path = tmp_path / "events.ndjson"
    path.write_bytes(_ndjson([event(i) for i in range(n)]))
    size = path.stat().st_size / 1e6
    run = InTerminal("load", "--url", str(server.make_url("/")), "--index", "events", "--batch", "2000", str(path))
    status, _, tty = await asyncio.to_thread(run.finish)
    assert status == 0, tty
    drawn = [f for f in tty.split("\r") if f.startswith("load     [")]
    assert len(drawn) >= 2  # a redraw per batch
    assert drawn[-1].startswith(f"load     [##############################] {size:,.1f}/{size:,.1f} MB      20,000 docs")
    assert " docs/s" in drawn[-1] and f"loaded {n:,} documents into events" in tty


# --- a busy service ---------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def _full_disk(settings: Settings, disk: Path) -> AsyncIterator[tuple[str, AsyncElasticsearch, Path]]:
    """A server whose writes are refused while less than 1 MB is free on ``disk`` (checked at
    every write), with an index of events made, then ``disk`` filled to 512 KB free: its URL,
    a client, and the filler file (removing it gives the space back)."""
    async with running(replace(settings, data_dir=disk / "data", disk_watermark_flood_stage="1mb",
                               disk_check_interval_ms=0)) as server:
        url = str(server.make_url("/"))
        async with AsyncElasticsearch(url) as es:
            await es.indices.create(index="events", mappings=EVENTS_MAPPING)
            yield url, es, fill_to_the_brim(disk, leave=512 * 1024)


async def test_documents_refused_by_a_full_disk_are_sent_again_once_space_returns(settings: Settings,
                                                                                  tiny_disk: Path,
                                                                                  tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(_ndjson(DOCS))
    async with _full_disk(settings, tiny_disk) as (url, es, filler):
        run = InTerminal("load", "--url", url, "--index", "events", "--max-retries", "8", str(path))
        await asyncio.to_thread(run.wait_for, lambda frames: "sent again in" in "".join(frames))
        filler.unlink()
        status, _, tty = await asyncio.to_thread(run.finish)
        assert status == 0, tty
        assert "esquire load: 7 of 7 documents refused with 429 (cluster_block_exception); those sent again " \
               "in 0.5 s (retry 1 of 8)" in tty
        assert f"loaded {len(DOCS)} documents into events" in tty
        assert await _rows(es, "events") == LOADED


async def test_documents_still_refused_after_the_last_retry_are_failures(settings: Settings, tiny_disk: Path,
                                                                        tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(_ndjson(DOCS))
    async with _full_disk(settings, tiny_disk) as (url, es, _):
        done = await asyncio.to_thread(esquire, "load", "--url", url, "--index", "events", "--max-retries", "1",
                                       str(path))
        assert done.returncode == 1, done.stderr
        lines = done.stderr.splitlines()
        assert lines[0] == ("esquire load: 7 of 7 documents refused with 429 (cluster_block_exception); those "
                            "sent again in 0.5 s (retry 1 of 1)")
        assert lines[1].startswith("loaded 0 documents into events in ") and lines[1].endswith("; 7 failed")
        assert lines[2].startswith(f"  {path}:1: cluster_block_exception: index [events] blocked by: "
                                   "[TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark")
        assert (await es.count(index="events"))["count"] == 0


async def test_a_batch_answered_503_is_sent_again_after_the_retry_after_it_asks(es: AsyncElasticsearch, server,
                                                                               tmp_path: Path) -> None:
    """A gateway in front of the service (as a proxy answers while its upstream restarts)
    refuses the first bulk with 503 and Retry-After, then passes every request through."""
    await es.indices.create(index="events", mappings=EVENTS_MAPPING)
    bulks: list[int] = []

    async def gateway(request: web.Request) -> web.Response:
        if request.path.endswith("/_bulk"):
            bulks.append(request.content_length or 0)
            if len(bulks) == 1:
                return web.json_response({"error": {"type": "unavailable", "reason": "upstream restarting"},
                                          "status": 503}, status=503, headers={"Retry-After": "1"})
        async with ClientSession() as session:
            async with session.request(request.method, server.make_url(request.path_qs), data=await request.read(),
                                       headers={"Content-Type": request.content_type}) as upstream:
                return web.Response(status=upstream.status, body=await upstream.read(),
                                    content_type=upstream.content_type)

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", gateway)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        path = tmp_path / "events.ndjson"
        path.write_bytes(_ndjson(DOCS))
        done = await asyncio.to_thread(esquire, "load", "--url", f"http://127.0.0.1:{port}", "--index", "events",
                                       str(path))
    finally:
        await runner.cleanup()
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("esquire load: the service answered 503: upstream restarting; the batch of 7 sent "
                                  "again in 1.0 s (retry 1 of 5)\nloaded 7 documents into events in ")
    assert len(bulks) == 2 and bulks[0] == bulks[1]  # the whole batch again
    assert await _rows(es, "events") == LOADED
