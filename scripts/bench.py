"""Benchmarks, each beside a raw SQLite baseline measured in the same run.

    scripts/bench [--docs 1000000] [--batch 5000]

ingest: 1M synthetic log documents through ``_bulk`` on a real server process, against
``sqlite3.executemany`` of the same rows into the same schema.
esql: ``FROM logs | STATS n = COUNT(*) BY host.name | SORT n DESC | LIMIT 10`` through
``POST /_query`` against the same GROUP BY in sqlite3 (median of 5 each).
async: stop latency on a query mid-scan; one heavy query alone and four at once; GET /_query/async/<id> latency while 4 heavy
queries run; the server's peak memory while a query produces 1M result rows.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.client import ProgressBar  # noqa: E402
from service.store.dates import format_millis  # noqa: E402

MAPPING = {"properties": {
    "@timestamp": {"type": "date"},
    "host": {"properties": {"name": {"type": "keyword"}}},
    "service": {"type": "keyword"},
    "level": {"type": "keyword"},
    "message": {"type": "text"},
    "status": {"type": "integer"},
    "bytes": {"type": "long"},
    "duration_ms": {"type": "double"},
    "client": {"properties": {"ip": {"type": "ip"}}},
}}
LEVELS = ["info"] * 8 + ["warn", "error"]
PATHS = ["/", "/login", "/api/items", "/api/orders", "/static/app.js", "/health"]


def synthetic_docs(n: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    start = 1_714_521_600_000  # 2024-05-01
    docs = []
    for i in range(n):
        status = rnd.choice((200, 200, 200, 201, 301, 404, 500))
        docs.append({
            "@timestamp": format_millis(start + i * 37),
            "host": {"name": f"host-{rnd.randrange(50):02d}"},
            "service": rnd.choice(("api", "web", "auth", "billing")),
            "level": rnd.choice(LEVELS),
            "message": f"GET {rnd.choice(PATHS)} {status}",
            "status": status,
            "bytes": rnd.randrange(100, 100_000),
            "duration_ms": round(rnd.random() * 500, 3),
            "client": {"ip": f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"},
        })
    return docs


class Server:
    def __init__(self, data_dir: Path, port: int = 9277) -> None:
        self.port = port
        self.data_dir = data_dir
        env = {**os.environ, "ESQUIRE_MAX_RESULT_ROWS": "1000000"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port), "--data-dir", str(data_dir),
             "--log-level", "warning"], cwd=ROOT, env=env)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.request("GET", "/")
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("server did not start")
                time.sleep(0.05)

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = "application/json") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            headers = {"Content-Type": content_type} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def bench_ingest(server: Server, docs: list[dict], batch: int, clients: int) -> float:
    """``clients`` connections send bulk bodies concurrently, as ``helpers.parallel_bulk`` does."""
    action = b'{"index":{}}\n'
    bodies = [b"".join(action + orjson.dumps(d) + b"\n" for d in docs[i:i + batch])
              for i in range(0, len(docs), batch)]
    status, body = server.request("PUT", "/logs", orjson.dumps({"mappings": MAPPING}))
    assert status == 200, body
    started = time.perf_counter()
    done = 0
    lock = threading.Lock()
    bar = ProgressBar(sys.stderr, "_bulk")

    def send(chunk: bytes) -> None:
        nonlocal done
        status, body = server.request("POST", "/logs/_bulk", chunk, "application/x-ndjson")
        assert status == 200 and b'"errors":false' in body[:40], body[:300]
        with lock:
            done += chunk.count(b"\n") // 2
            bar.draw(done, len(docs))

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, bodies))
    bar.close()
    return len(docs) / (time.perf_counter() - started)


def bench_raw_sqlite(db_path: Path, docs: list[dict], batch: int) -> float:
    """The same rows, the same schema, the same pragmas and batch commits, straight into sqlite3."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (_id TEXT NOT NULL UNIQUE, _version INTEGER NOT NULL, _seq_no INTEGER NOT NULL, "
                 "_source BLOB NOT NULL, c1 INTEGER, c2 TEXT, c3 TEXT, c4 TEXT, c5 TEXT, c6 INTEGER, c7 INTEGER, "
                 "c8 REAL, c9 TEXT)")
    conn.execute("CREATE INDEX t_ts ON t (c1)")
    rows = []
    for i, d in enumerate(docs):
        rows.append((f"{i:020d}", 1, i, orjson.dumps(d), 1_714_521_600_000 + i * 37, d["host"]["name"], d["service"],
                     d["level"], d["message"], d["status"], d["bytes"], d["duration_ms"], d["client"]["ip"]))
    sql = "INSERT OR REPLACE INTO t VALUES (" + ", ".join("?" * 13) + ")"
    started = time.perf_counter()
    bar = ProgressBar(sys.stderr, "raw")
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows[i:i + batch])
        conn.execute("COMMIT")
        bar.draw(min(i + batch, len(rows)), len(rows))
    bar.close()
    rate = len(rows) / (time.perf_counter() - started)
    conn.close()
    return rate


COUNT_BY = "FROM logs | STATS n = COUNT(*) BY host.name | SORT n DESC | LIMIT 10"
HEAVY = "FROM logs | EVAL kb = bytes / 1024 | STATS total = SUM(kb), slow = COUNT(*) WHERE duration_ms > 250 BY host.name"


def timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def bench_esql_count_by(server: Server, raw_db: Path) -> tuple[float, float]:
    body = orjson.dumps({"query": COUNT_BY})

    def http_query() -> None:
        status, out = server.request("POST", "/_query", body)
        assert status == 200, out[:300]

    conn = sqlite3.connect(raw_db)
    raw = lambda: conn.execute("SELECT c2, count(*) FROM t GROUP BY c2 ORDER BY 2 DESC LIMIT 10").fetchall()  # noqa
    http_query(), raw()  # warm both caches
    esql = statistics.median(timed(http_query) for _ in range(5))
    base = statistics.median(timed(raw) for _ in range(5))
    conn.close()
    return esql, base


def submit(server: Server, query: str, **options: object) -> dict:
    status, out = server.request("POST", "/_query/async", orjson.dumps({"query": query, **options}))
    assert status == 200, out[:300]
    return orjson.loads(out)


def bench_stop(server: Server, runs: int = 3) -> list[float]:
    latencies = []
    for _ in range(runs):
        search = submit(server, HEAVY, wait_for_completion_timeout="300ms")
        assert search["is_running"], "the heavy query finished before it could be stopped"
        started = time.perf_counter()
        status, out = server.request("POST", f"/_query/async/{search['id']}/stop")
        latencies.append(time.perf_counter() - started)
        assert status == 200 and orjson.loads(out)["is_partial"], out[:300]
        server.request("DELETE", f"/_query/async/{search['id']}")
    return latencies


def bench_concurrency(server: Server) -> tuple[float, float]:
    """Seconds for one heavy query alone, and for four submitted at once."""
    def run(_: object = None) -> None:
        status, out = server.request("POST", "/_query", orjson.dumps({"query": HEAVY}))
        assert status == 200, out[:300]

    alone = timed(run)
    with ThreadPoolExecutor(4) as pool:
        together = timed(lambda: list(pool.map(run, range(4))))
    return alone, together


def bench_polling(server: Server, polls: int = 300) -> tuple[float, float, int]:
    """GET latency of running searches while 4 heavy queries run; only polls that found
    their search still running and all 4 running count."""
    searches = [submit(server, HEAVY, wait_for_completion_timeout="0ms") for _ in range(4)]
    latencies = []
    bar = ProgressBar(sys.stderr, "polls")
    for i in range(polls):
        t0 = time.perf_counter()
        status, out = server.request("GET", f"/_query/async/{searches[i % 4]['id']}")
        elapsed = time.perf_counter() - t0
        status, tasks = server.request("GET", "/_tasks?actions=indices:data/read/esql[a]&group_by=none")
        if orjson.loads(out)["is_running"] and len(orjson.loads(tasks)["tasks"]) == 4:
            latencies.append(elapsed)
        bar.draw(i + 1, polls)
        time.sleep(0.01)
    bar.close()
    for s in searches:
        server.request("DELETE", f"/_query/async/{s['id']}")
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1], len(latencies)


def rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (the server's query workers)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier += children
    total = 0
    for p in tree:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def bench_result_memory(server: Server, rows: int) -> tuple[int, int]:
    """Peak RSS growth of the server and its workers (sampled every 50 ms) while one async query stores
    ``rows`` result rows; returns the growth in KiB and the rows stored."""
    before = peak = rss_kb(server.proc.pid)
    search = submit(server, f"FROM logs | KEEP @timestamp, host.name, bytes, message | LIMIT {rows}",
                    wait_for_completion_timeout="0ms", keep_on_completion=True)
    while True:
        peak = max(peak, rss_kb(server.proc.pid))
        status, out = server.request("GET", "/_tasks?actions=*esql*&group_by=none")
        if not orjson.loads(out)["tasks"]:
            break
        time.sleep(0.05)
    db = sqlite3.connect(server.data_dir / "esquire.db")
    stored = db.execute("SELECT row_count FROM searches WHERE id = ?", (search["id"],)).fetchone()[0]
    db.close()
    server.request("DELETE", f"/_query/async/{search['id']}")
    return peak - before, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=2, help="concurrent _bulk connections")
    args = parser.parse_args()
    print(f"generating {args.docs:,} synthetic log documents...", file=sys.stderr)
    docs = synthetic_docs(args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        raw_rate = bench_raw_sqlite(Path(tmp) / "raw.db", docs, args.batch)
        server = Server(Path(tmp) / "data")
        try:
            ingest_rate = bench_ingest(server, docs, args.batch, args.clients)
            del docs
            esql_s, raw_s = bench_esql_count_by(server, Path(tmp) / "raw.db")
            stops = bench_stop(server)
            alone, together = bench_concurrency(server)
            poll_median, poll_p99, counted = bench_polling(server)
            small = bench_result_memory(server, 100_000)
            large = bench_result_memory(server, 1_000_000)
        finally:
            server.stop()
    print(f"ingest  _bulk over HTTP: {ingest_rate:>10,.0f} docs/s ({args.clients} connections, {args.batch} docs each)")
    print(f"ingest  raw executemany: {raw_rate:>10,.0f} docs/s")
    print(f"ingest  ratio:           {ingest_rate / raw_rate:>10.2f}x of raw (target >= 0.25x)")
    print(f"esql    COUNT(*) BY over HTTP: {esql_s * 1000:>8.1f} ms (median of 5)")
    print(f"esql    raw sqlite GROUP BY:   {raw_s * 1000:>8.1f} ms")
    print(f"esql    ratio:                 {esql_s / raw_s:>8.2f}x of raw (target <= 1.5x)")
    print(f"async   stop mid-scan:         {', '.join(f'{s * 1000:.0f}' for s in stops)} ms (target < 100 ms)")
    print(f"async   heavy query alone: {alone:.1f} s; 4 at once: {together:.1f} s")
    print(f"async   GET while 4 queries run: median {poll_median * 1000:.1f} ms, "
          f"p99 {poll_p99 * 1000:.1f} ms over {counted} polls (target < 20 ms)")
    print(f"async   peak RSS growth while storing results: {small[0] / 1024:.0f} MiB for {small[1]:,} rows, "
          f"{large[0] / 1024:.0f} MiB for {large[1]:,} rows (flat = not proportional)")


if __name__ == "__main__":
    main()
