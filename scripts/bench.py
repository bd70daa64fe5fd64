"""Benchmarks, each beside a raw SQLite baseline measured in the same run.

    scripts/bench [--docs 1000000] [--batch 5000]

ingest: 1M synthetic log documents through ``_bulk`` on a real server process, against
``sqlite3.executemany`` of the same rows into the same schema.
"""

from __future__ import annotations

import argparse
import http.client
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


def progress(label: str, done: int, total: int, started: float) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    rate = done / max(time.perf_counter() - started, 1e-9)
    sys.stderr.write(f"\r{label:<8} [{'#' * filled}{'.' * (width - filled)}] {done:>9,}/{total:,} {rate:>10,.0f}/s")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


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
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port), "--data-dir", str(data_dir),
             "--log-level", "warning"], cwd=ROOT)
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

    def send(chunk: bytes) -> None:
        nonlocal done
        status, body = server.request("POST", "/logs/_bulk", chunk, "application/x-ndjson")
        assert status == 200 and b'"errors":false' in body[:40], body[:300]
        with lock:
            done += chunk.count(b"\n") // 2
            progress("_bulk", done, len(docs), started)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, bodies))
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
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows[i:i + batch])
        conn.execute("COMMIT")
        progress("raw", min(i + batch, len(rows)), len(rows), started)
    rate = len(rows) / (time.perf_counter() - started)
    conn.close()
    return rate


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
        finally:
            server.stop()
    print(f"ingest  _bulk over HTTP: {ingest_rate:>10,.0f} docs/s ({args.clients} connections, {args.batch} docs each)")
    print(f"ingest  raw executemany: {raw_rate:>10,.0f} docs/s")
    print(f"ingest  ratio:           {ingest_rate / raw_rate:>10.2f}x of raw (target >= 0.25x)")


if __name__ == "__main__":
    main()
