"""Benchmarks, each beside a raw SQLite baseline measured in the same run, on the same rows.

    scripts/bench [--docs 1000000] [--runs 5] [--only ingest,queries,async,memory,eql,sml,export,binary,liveness]

binary: the executable scripts/build-binary makes, from exec of `serve` to the first answer of GET /, beside
``python -m service`` from the venv, and its size (no data needed).

The data is N synthetic log documents (seeded, so every run sees the same rows), loaded into a
real server process through ``_bulk`` and, with sqlite3 alone, into a table of the same schema.

ingest: ``_bulk`` over HTTP against ``sqlite3.executemany`` of the same rows into the same schema
(unique ``_id``, ``_source`` kept, one typed column per field, the ``@timestamp`` index).
queries: the five ES|QL queries of issue 11 through the official ``elasticsearch`` client
(``es.esql.query``) against the one equivalent SQL statement in sqlite3 over the raw table; then
again on a second server over the same data with ``ESQUIRE_QUERY_PUSHDOWN=false``. Every answer is
checked against the SQL answer: a benchmark that compares different work is worthless.
async: stop latency on a query mid-scan; one heavy query alone and four at once; GET
/_query/async/<id> latency while 4 heavy queries run.
memory: the server's peak memory while a query stores 100k and 1M result rows.
eql: a two-stage ``sequence by host.name with maxspan`` over every document through
``es.eql.search``, in events/s, against the reference: the same query over the same events
(in the same order) through the ``eql`` package's Python engine, given the events already
decoded; the sequences found must be the same. Also the server's peak memory growth meanwhile.
sml: the background task ``source logs qsize=N | stats count by host.name`` from creation to
COMPLETED beside ``FROM logs | STATS count(*) BY host.name`` through the async ES|QL API, in
alternating rounds; their medians, the ratio, and the two answers compared.
export: a background task holding every document (SML ``source logs qsize=N``) downloaded through
``POST /_sme/async_requests/file_download/<id>`` as CSV, XLSX and JSON: rows/s (wall, and per CPU
second of the server: the machine may be shared), the server's peak RSS growth, each file checked
(its row count); beside it, the XLSX writer alone and XlsxWriter (the reference) on the same cells.

liveness: the latency of ``GET /`` (median, p99, max) idle, during an 18 MB ``_bulk`` and while 4
heavy queries run; then the time from SIGTERM to exit of a server with a heavy query running
(graceful stop: the query's partial result is stored first, within the shutdown grace). The
tests assert only that these happen (answered at all, before the bulk ends, exit 0, a partial
result kept); how fast is measured here.

Exits 1 when an answer differs from raw SQLite.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import math
import os
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson
from elasticsearch import Elasticsearch, ElasticsearchWarning

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.client import ProgressBar  # noqa: E402
from service.store.catalog import column_affinity  # noqa: E402
from service.store.dates import format_millis, parse_iso_nanos  # noqa: E402
from service.store.db import query_connection  # noqa: E402

SECTIONS = ("ingest", "queries", "async", "memory", "eql", "sml", "export", "binary", "liveness")
SEED = 7
START_MS = 1_714_521_600_000  # 2024-05-01T00:00:00Z
SPAN_MS = 7 * 86_400_000  # a week of logs: 168 hourly buckets
TARGET = 1.5  # the target: every query within 1.5x of raw SQLite

# Queries 2-4 have no LIMIT, so ES|QL warns of its default one (1000 rows, more than any of them returns).
warnings.filterwarnings("ignore", "No limit defined", ElasticsearchWarning)


# --- the data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    path: str  # in the documents and the ES|QL queries
    type: str  # in the index mapping
    column: str  # in the raw SQLite table


FIELDS = (
    Field("@timestamp", "date", "ts"),
    Field("host.name", "keyword", "host_name"),
    Field("process.name", "keyword", "process_name"),
    Field("user.name", "keyword", "user_name"),
    Field("event.code", "integer", "event_code"),
    Field("status", "integer", "status"),
    Field("bytes", "long", "bytes"),
    Field("message", "text", "message"),
)
NUMBERS = ("integer", "long")

PROCESSES = ["sshd", "nginx", "systemd", "cron", "kernel", "sudo", "postgres", "dockerd", "containerd", "kubelet",
             "java", "python3", "node", "haproxy", "redis-server", "mysqld", "rsyslogd", "auditd", "chronyd",
             "NetworkManager", "polkitd", "dbus-daemon", "snapd", "gitlab-runner", "vault", "consul", "envoy",
             "filebeat", "metricbeat", "lsass.exe"]
EVENT_CODES = [4624, 4625, 4634, 4647, 4648, 4656, 4663, 4670, 4672, 4688, 4689, 4697, 4698, 4720, 4722, 4724,
               4732, 4740, 4768, 4776]
STATUSES = {200: 70, 201: 5, 204: 3, 301: 2, 302: 3, 304: 4, 400: 2, 401: 2, 403: 2, 404: 4,
            500: 1.5, 502: 0.7, 503: 0.5, 504: 0.3}  # about 3% 5xx
# (template, weight): about 4% of messages contain "denied"; "Denied" and "DENIED" check that
# LIKE stays case-sensitive, as ES|QL's is and SQLite's LIKE is not (hence GLOB on the SQL side).
MESSAGES = [
    ("GET {path} HTTP/1.1 {status} {n}", 40), ("POST {path} HTTP/1.1 {status} {n}", 15),
    ("Accepted publickey for {user} from {ip} port {port} ssh2", 10),
    ("Failed password for {user} from {ip} port {port} ssh2", 6),
    ("pam_unix(sshd:session): session opened for user {user}", 8), ("Started Session {n} of user {user}.", 8),
    ("connection reset by peer {ip}:{port}", 5), ("upstream timed out while reading {path}", 4),
    ("permission denied: {user} cannot open {path}", 2), ("access denied for user {user} from {ip}", 2),
    ("Denied by policy: {user} {path}", 0.5), ("AUDIT DENIED {user} {path}", 0.5),
]
PATHS = ["/", "/login", "/logout", "/api/items", "/api/orders", "/api/users", "/static/app.js", "/health",
         "/var/log/secure", "/etc/shadow", "/admin", "/metrics"]


def zipf(n: int, s: float) -> list[float]:
    """Weights of a skewed population, as hosts, users and processes are in real logs."""
    return [1 / (k + 1) ** s for k in range(n)]


def message_pool(rnd: random.Random, users: list[str], size: int = 5000) -> list[str]:
    templates, weights = zip(*MESSAGES)
    def ip() -> str:
        return f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
    return [template.format(path=rnd.choice(PATHS), status=rnd.choice(list(STATUSES)), n=rnd.randrange(10_000),
                            user=rnd.choice(users), ip=ip(), port=rnd.randrange(1024, 65536))
            for template in rnd.choices(templates, weights, k=size)]


def synthetic_logs(n: int, seed: int = SEED) -> dict[str, list[Any]]:
    """Field path -> the value of each of ``n`` documents, as stored (dates as epoch ms).

    Drawn column by column with ``random.choices`` (C speed), so a million rows take seconds:
    50 hosts, 30 processes, 1000 users and 20 event codes (skewed), statuses with ~3% 5xx,
    heavy-tailed byte counts (median 5 kB, max ~10^8), timestamps rising over a week."""
    rnd = random.Random(seed)
    hosts = [f"host-{k:02d}" for k in range(50)]
    users = [f"user-{k:04d}" for k in range(1000)]
    return {
        "@timestamp": [START_MS + i * SPAN_MS // n + rnd.randrange(1000) for i in range(n)],
        "host.name": rnd.choices(hosts, zipf(50, 0.6), k=n),
        "process.name": rnd.choices(PROCESSES, zipf(30, 0.8), k=n),
        "user.name": rnd.choices(users, zipf(1000, 0.8), k=n),
        "event.code": rnd.choices(EVENT_CODES, zipf(20, 0.5), k=n),
        "status": rnd.choices(list(STATUSES), list(STATUSES.values()), k=n),
        "bytes": [int(rnd.lognormvariate(8.5, 2.0)) for _ in range(n)],
        "message": rnd.choices(message_pool(rnd, users), k=n),
    }


def nested(leaves: dict[str, Any]) -> dict[str, Any]:
    """Dotted paths as the nested objects a log document (and its mapping) has."""
    tree: dict[str, Any] = {}
    for path, leaf in leaves.items():
        *parents, name = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[name] = leaf
    return tree


def mapping() -> dict[str, Any]:
    def properties(tree: dict[str, Any]) -> dict[str, Any]:
        return {"properties": {k: properties(v) if isinstance(v, dict) else {"type": v} for k, v in tree.items()}}
    return properties(nested({f.path: f.type for f in FIELDS}))


def source_template() -> str:
    """``%``-template of one document's JSON, its values in ``FIELDS`` order (numbers as ``%d``,
    the rest already JSON-encoded): a million documents serialise in a second or two."""
    placeholders = {f.path: "%d" if f.type in NUMBERS else "%s" for f in FIELDS}

    def render(tree: dict[str, Any]) -> str:
        return "{" + ",".join(f"{orjson.dumps(k).decode()}:{render(v) if isinstance(v, dict) else v}"
                              for k, v in tree.items()) + "}"
    return render(nested(placeholders))


def json_values(field: Field, values: list[Any]) -> list[Any]:
    if field.type in NUMBERS:
        return values
    if field.type == "date":
        return [f'"{format_millis(ms)}"' for ms in values]
    encoded = {v: orjson.dumps(v).decode() for v in set(values)}
    return [encoded[v] for v in values]


def bulk_bodies(logs: dict[str, list[Any]], batch: int) -> list[bytes]:
    """The ``_bulk`` request bodies; each document's line is also its ``_source`` in the raw table."""
    template = source_template()
    columns = [json_values(f, logs[f.path]) for f in FIELDS]
    n = len(columns[0])
    bodies = []
    bar = ProgressBar(sys.stderr, "bodies")
    for start in range(0, n, batch):
        bodies.append("".join('{"index":{}}\n' + template % values + "\n"
                              for values in zip(*(c[start:start + batch] for c in columns))).encode())
        bar.draw(min(start + batch, n), n)
    bar.close()
    return bodies


def sources(body: bytes) -> list[bytes]:
    return body.split(b"\n")[1::2]


# --- the server and the raw table ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m service serve`` over ``data_dir``, as a user runs it."""

    def __init__(self, data_dir: Path, *, pushdown: bool = True) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        env = {**os.environ, "ESQUIRE_MAX_RESULT_ROWS": "1000000", "ESQUIRE_QUERY_PUSHDOWN": str(pushdown).lower()}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(self.port), "--data-dir", str(data_dir),
             "--log-level", "warning"], cwd=ROOT, env=env)
        self.es = Elasticsearch(f"http://127.0.0.1:{self.port}", request_timeout=600)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.request("GET", "/")
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
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
        self.es.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def bench_ingest(server: Server, bodies: list[bytes], docs: int, clients: int) -> float:
    """Docs/s of ``clients`` connections sending bulk bodies concurrently, as ``helpers.parallel_bulk`` does."""
    status, body = server.request("PUT", "/logs", orjson.dumps({"mappings": mapping()}))
    assert status == 200, body
    done = 0
    lock = threading.Lock()
    bar = ProgressBar(sys.stderr, "_bulk")

    def send(chunk: bytes) -> None:
        nonlocal done
        status, body = server.request("POST", "/logs/_bulk", chunk, "application/x-ndjson")
        assert status == 200 and b'"errors":false' in body[:40], body[:300]
        with lock:
            done += chunk.count(b"\n") // 2
            bar.draw(done, docs)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, bodies))
    elapsed = time.perf_counter() - started
    bar.close()
    return docs / elapsed


def bench_raw_ingest(db_path: Path, logs: dict[str, list[Any]], bodies: list[bytes]) -> float:
    """Docs/s of sqlite3 writing the same rows into the same schema as Esquire's document table:
    same pragmas, ``INSERT OR REPLACE``, one ``BEGIN IMMEDIATE`` transaction per bulk body. Only the
    transactions are timed, not building the rows."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    columns = ", ".join(f"{f.column} {column_affinity(f.type)}" for f in FIELDS)
    conn.execute("CREATE TABLE logs (_id TEXT NOT NULL UNIQUE, _version INTEGER NOT NULL, _seq_no INTEGER NOT NULL, "
                 f"_source BLOB NOT NULL, {columns})")
    conn.execute("CREATE INDEX logs_ts ON logs (ts)")
    sql = f"INSERT OR REPLACE INTO logs VALUES ({', '.join('?' * (4 + len(FIELDS)))})"
    values = [logs[f.path] for f in FIELDS]
    elapsed = seq = 0
    bar = ProgressBar(sys.stderr, "raw")
    for body in bodies:
        rows = [(f"{i:020d}", 1, i, source, *(v[i] for v in values)) for i, source in enumerate(sources(body), seq)]
        seq += len(rows)
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        elapsed += time.perf_counter() - started
        bar.draw(seq, len(values[0]))
    bar.close()
    conn.close()
    return seq / elapsed


# --- the five queries -------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    esql: str
    sql: str  # the same work as one statement on the raw table, columns in ES|QL's order
    limit: int | None = None  # appended to ``sql`` when timed; the check reads the whole answer
    sorted_on: int | None = None  # the column the rows are ordered by (descending), if any

    @property
    def timed_sql(self) -> str:
        return self.sql if self.limit is None else f"{self.sql} LIMIT {self.limit}"


QUERIES = (
    Query("FROM logs | STATS n = COUNT(*) BY host.name | SORT n DESC | LIMIT 10",
          "SELECT count(*) AS n, host_name FROM logs GROUP BY host_name ORDER BY n DESC", limit=10, sorted_on=0),
    Query('FROM logs | WHERE status >= 500 AND message LIKE "*denied*" | STATS SUM(bytes), MAX(bytes) BY process.name',
          "SELECT sum(bytes), max(bytes), process_name FROM logs WHERE status >= 500 AND message GLOB '*denied*' "
          "GROUP BY process_name"),
    Query("FROM logs | STATS COUNT(*) BY hour = DATE_TRUNC(1 hour, @timestamp)",
          "SELECT count(*), ts / 3600000 * 3600000 AS hour FROM logs GROUP BY hour"),
    Query("FROM logs | EVAL kb = bytes / 1024.0 | STATS AVG(kb), COUNT_DISTINCT(user.name) BY event.code",
          "SELECT avg(bytes / 1024.0), count(DISTINCT user_name), event_code FROM logs GROUP BY event_code"),
    Query("FROM logs | WHERE event.code == 4625 | SORT bytes DESC | KEEP @timestamp, host.name, bytes | LIMIT 20",
          "SELECT ts, host_name, bytes FROM logs WHERE event_code = 4625 ORDER BY bytes DESC", limit=20, sorted_on=2),
)

Row = tuple[Any, ...]


def esql_rows(body: dict[str, Any]) -> list[Row]:
    """The answer's rows with dates as epoch ms, as the raw table holds them."""
    dates = [c["type"] == "date" for c in body["columns"]]
    return [tuple(parse_iso_nanos(v) // 1_000_000 if is_date and v is not None else v for v, is_date in zip(row, dates))
            for row in body["values"]]


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return type(a) is type(b) and a == b


def same_rows(got: list[Row], want: list[Row]) -> bool:
    return len(got) == len(want) and all(len(g) == len(w) and all(map(same_value, g, w)) for g, w in zip(got, want))


def check(query: Query, got: list[Row], full: list[Row]) -> str | None:
    """Why ``got`` (Esquire's rows) is not the answer SQLite gives (all of it: ``full``), or None.

    Unordered results are compared as sets of rows (doubles to 1e-9 relative). A sorted, limited
    result must have SQLite's sort values in SQLite's order; rows tied on the sort value may be
    any of the tied rows, so each row need only be one of SQLite's rows."""
    if query.sorted_on is None:
        def key(row: Row) -> Row:  # the group keys, which are never doubles here
            return tuple((v is not None, v) for v in row if not isinstance(v, float))
        if same_rows(sorted(got, key=key), sorted(full, key=key)):
            return None
        return f"rows differ:\n    esquire {sorted(got, key=key)[:10]}\n    sqlite  {sorted(full, key=key)[:10]}"
    want = full[:query.limit]
    if [r[query.sorted_on] for r in got] != [r[query.sorted_on] for r in want]:
        return f"sort values differ:\n    esquire {got}\n    sqlite  {want}"
    if Counter(got) - Counter(full):
        return f"rows not in SQLite's answer: {list(Counter(got) - Counter(full))}"
    return None


def median_time(fn: Callable[[], Any], runs: int, tick: Callable[[], None]) -> tuple[float, Any]:
    """Median seconds of ``runs`` calls after one warm-up call, and the warm-up's answer."""
    answer = fn()
    tick()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
        tick()
    return statistics.median(times), answer


def progress(label: str, total: int) -> tuple[ProgressBar, Callable[[], None]]:
    bar = ProgressBar(sys.stderr, label)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        bar.draw(done, total)
    return bar, tick


def bench_esql(server: Server, runs: int, label: str) -> list[tuple[float, list[Row]]]:
    """Each query's median seconds through ``es.esql.query`` and its answer."""
    bar, tick = progress(label, len(QUERIES) * (runs + 1))
    out = []
    for query in QUERIES:
        seconds, body = median_time(lambda: server.es.esql.query(query=query.esql).body, runs, tick)
        out.append((seconds, esql_rows(body)))
    bar.close()
    return out


def bench_raw_queries(db_path: Path, runs: int) -> list[tuple[float, list[Row]]]:
    """Each statement's median seconds over a connection set up as Esquire's query workers set up
    theirs, and the whole answer (without LIMIT) for the check."""
    conn = query_connection(db_path)
    bar, tick = progress("sqlite3", len(QUERIES) * (runs + 1))
    out = []
    for query in QUERIES:
        seconds, _ = median_time(lambda: conn.execute(query.timed_sql).fetchall(), runs, tick)
        out.append((seconds, conn.execute(query.sql).fetchall()))
    bar.close()
    conn.close()
    return out


# --- stop, polling, memory -----------------------------------------------------------------

# DISSECT keeps this query in Python whatever SQL pushdown learns, so it runs long enough to be
# stopped mid-scan and to load the server while it is polled.
HEAVY = ('FROM logs | DISSECT message "%{verb} %{target} %{rest}" | EVAL kb = bytes / 1024 '
         '| STATS total = SUM(kb), failed = COUNT(*) WHERE status >= 500, verbs = COUNT_DISTINCT(verb) BY host.name')


def submit(server: Server, query: str, **options: object) -> dict:
    status, out = server.request("POST", "/_query/async", orjson.dumps({"query": query, **options}))
    assert status == 200, out[:300]
    return orjson.loads(out)


def bench_stop(server: Server, runs: int = 3) -> list[float]:
    """Seconds a stop takes on a query still running after 300 ms (runs where it was not are skipped)."""
    latencies = []
    for _ in range(runs):
        search = submit(server, HEAVY, wait_for_completion_timeout="300ms")
        if not search["is_running"]:
            continue  # finished in time: nothing to stop, nothing kept
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

    started = time.perf_counter()
    run()
    alone = time.perf_counter() - started
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, range(4)))
    return alone, time.perf_counter() - started


def bench_polling(server: Server, polls: int = 300) -> list[float]:
    """GET latencies of running searches while 4 heavy queries run; only polls that found their
    search still running and all 4 running count."""
    searches = [submit(server, HEAVY, wait_for_completion_timeout="0ms") for _ in range(4)]
    latencies = []
    bar = ProgressBar(sys.stderr, "polls")
    for i in range(polls):
        started = time.perf_counter()
        status, out = server.request("GET", f"/_query/async/{searches[i % 4]['id']}")
        elapsed = time.perf_counter() - started
        status, tasks = server.request("GET", "/_tasks?actions=indices:data/read/esql[a]&group_by=none")
        if orjson.loads(out)["is_running"] and len(orjson.loads(tasks)["tasks"]) == 4:
            latencies.append(elapsed)
        bar.draw(i + 1, polls)
        time.sleep(0.01)
    bar.close()
    for s in searches:
        server.request("DELETE", f"/_query/async/{s['id']}")
    return sorted(latencies)


def _latencies(server: Server, busy: Callable[[], bool], at_least: int = 20) -> list[float]:
    """``GET /`` latencies, one after another, while ``busy()`` (and at least ``at_least``)."""
    latencies: list[float] = []
    while busy() or len(latencies) < at_least:
        started = time.perf_counter()
        status, _ = server.request("GET", "/")
        latencies.append(time.perf_counter() - started)
        assert status == 200
    return sorted(latencies)


def bench_liveness(server: Server) -> dict[str, list[float]]:
    """``GET /`` latencies idle, during an 18 MB bulk and while 4 heavy queries run."""
    idle = _latencies(server, lambda: False, at_least=200)
    line = b'{"index":{}}\n{"message":"' + b"x" * 80 + b'","n":1,"host":{"name":"h1"}}\n'
    with ThreadPoolExecutor(1) as pool:
        bulk = pool.submit(server.request, "POST", "/liveness/_bulk", line * 150_000, "application/x-ndjson")
        during_bulk = _latencies(server, lambda: not bulk.done())
        assert bulk.result()[0] == 200
    server.request("DELETE", "/liveness")
    searches = [submit(server, HEAVY, wait_for_completion_timeout="0ms") for _ in range(4)]

    def running() -> bool:
        _, tasks = server.request("GET", "/_tasks?actions=indices:data/read/esql[a]&group_by=none")
        return len(orjson.loads(tasks)["tasks"]) == 4
    during_queries = _latencies(server, running, at_least=0)
    for search in searches:
        server.request("DELETE", f"/_query/async/{search['id']}")
    return {"idle": idle, "during an 18 MB _bulk": during_bulk, "while 4 heavy queries run": during_queries}


def bench_graceful_stop(data_dir: Path) -> tuple[float, bool]:
    """Seconds from SIGTERM to exit with a heavy query running, and whether its partial result was kept."""
    server = Server(data_dir)
    search = submit(server, HEAVY, wait_for_completion_timeout="300ms", keep_on_completion=True)
    started = time.perf_counter()
    server.stop()
    stopped = time.perf_counter() - started
    with served(data_dir) as again:
        status, out = again.request("GET", f"/_query/async/{search['id']}")
        kept = status == 200 and orjson.loads(out).get("is_partial") is True
        again.request("DELETE", f"/_query/async/{search['id']}")
    return stopped, kept and bool(search.get("is_running"))


def report_liveness(latencies: dict[str, list[float]], stop: tuple[float, bool]) -> list[str]:
    lines = ["## liveness", "| GET / | answers | median | p99 | max |", "|---|---:|---:|---:|---:|"]
    for name, values in latencies.items():
        lines.append(f"| {name} | {len(values)} | {ms(statistics.median(values))} ms | {ms(p99(values))} ms | "
                     f"{ms(values[-1])} ms |" if values else f"| {name} | 0 | n/a (more --docs) | | |")
    seconds, kept = stop
    lines.append(f"- SIGTERM to exit with a heavy query running: {seconds:.2f} s (grace 5 s); its partial result "
                 f"{'kept' if kept else 'NOT kept (or the query had finished: more --docs)'}")
    return lines + ["- target: GET / always under 1 s (issue 10's liveness bound)"]


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


# --- the report --------------------------------------------------------------------------------


EQL_QUERY = "sequence by host.name with maxspan=1m [any where status >= 500] [any where event.code == 4625]"
EQL_SIZE = 10_000  # more than the sequences the data has, so both sides list all of them


def bench_eql(server: Server, runs: int) -> tuple[float, list[list[str]], int]:
    """Median seconds of the sequence query through ``es.eql.search``, its sequences (each
    event as ``_event_key``), and the server's peak RSS growth meanwhile, in KiB."""
    def search() -> Any:
        return server.es.eql.search(index="logs", query=EQL_QUERY, size=EQL_SIZE).body
    bar, tick = progress("eql", runs + 1)
    before = rss_kb(server.proc.pid)
    peak = [before]
    watching = threading.Event()

    def watch() -> None:
        while not watching.wait(0.05):
            peak[0] = max(peak[0], rss_kb(server.proc.pid))
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    seconds, body = median_time(search, runs, tick)
    watching.set()
    watcher.join()
    bar.close()
    return seconds, [[_event_key(e["_source"]) for e in s["events"]] for s in body["hits"]["sequences"]], \
        peak[0] - before


def _event_key(source: dict[str, Any]) -> str:
    """What identifies an event of the synthetic logs well enough to compare two answers."""
    return f"{source['@timestamp']}|{source['host']['name']}|{source['status']}|{source['event']['code']}"


def bench_eql_reference(bodies: list[bytes], runs: int) -> tuple[float, list[list[str]]]:
    """Median seconds of the ``eql`` package's engine over the decoded events in Esquire's
    order (time, then insertion), and the sequences it found."""
    import eql  # a benchmark-only dependency (the ``bench`` extra)

    documents = [orjson.loads(line) for body in bodies for line in sources(body) if line]
    order = sorted(range(len(documents)), key=lambda i: documents[i]["@timestamp"])
    events = [eql.Event("generic", parse_iso_nanos(documents[i]["@timestamp"]) // 1_000_000, documents[i])
              for i in order]
    with eql.parser.elasticsearch_syntax, eql.parser.ignore_missing_functions:
        query = eql.parse_query(EQL_QUERY)
    found: list[list[str]] = []

    def run() -> None:
        found.clear()
        engine = eql.PythonEngine({"time_unit": 1000})
        engine.add_query(query)
        engine.add_output_hook(lambda output: found.append([_event_key(e.data) for e in output.events]))
        engine.stream_events(events)
    bar, tick = progress("eql pkg", runs + 1)
    seconds, _ = median_time(run, runs, tick)
    bar.close()
    return seconds, found


def report_eql(args: argparse.Namespace, ours: tuple[float, list[list[str]], int],
               reference: tuple[float, list[list[str]]]) -> tuple[list[str], list[str]]:
    (t_ours, seqs_ours, peak_kb), (t_ref, seqs_ref) = ours, reference
    mismatches = [] if seqs_ours == seqs_ref else \
        [f"MISMATCH eql: esquire found {len(seqs_ours)} sequences, the eql package {len(seqs_ref)}"]
    if len(seqs_ours) >= EQL_SIZE:
        mismatches.append(f"MISMATCH eql: {EQL_SIZE} sequences or more: raise EQL_SIZE to compare them all")
    rate, ref_rate = args.docs / t_ours, args.docs / t_ref
    return ["## eql",
            f"- query: `{EQL_QUERY}` over all {args.docs:,} documents, size {EQL_SIZE:,}: es.eql.search with the "
            f"official client (scan, match, render, decode included); median of {args.runs} after a warm-up.",
            "- reference: the eql package's PythonEngine over the same events, already decoded into memory, in "
            "the same order (time, then insertion).",
            "",
            "| | seconds | events/s |\n| --- | ---: | ---: |",
            f"| esquire | {t_ours:.2f} | {rate:,.0f} |",
            f"| eql package | {t_ref:.2f} | {ref_rate:,.0f} |",
            f"| ratio | | {rate / ref_rate:.1f}x the reference's rate (target >= 2x) |",
            "",
            f"- sequences: {len(seqs_ours):,} " + ("(the same as the reference's)" if not mismatches else "MISMATCH"),
            f"- server peak RSS growth during the searches: {peak_kb / 1024:.0f} MiB"], mismatches


# --- sml: a background task beside the same ES|QL query ------------------------------------------

SML_TASK = "source logs qsize={docs} | stats count by host.name"
SML_ESQL = "FROM logs | STATS count(*) BY host.name"
SML_TARGET = 1.2  # the target: the task within 1.2x of the ES|QL async query
POLL_S = 0.01


def _polled(server: Server, path: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    while True:
        status, out = server.request("GET", path)
        assert status == 200, out[:300]
        body = orjson.loads(out)
        if done(body):
            return body
        time.sleep(POLL_S)


def esql_async(server: Server) -> tuple[float, list[Row]]:
    """Seconds from ``POST /_query/async`` to the completed answer, polled as the task is, and the answer."""
    started = time.perf_counter()
    body = submit(server, SML_ESQL, wait_for_completion_timeout="0ms", keep_on_completion=True)
    if body.get("is_running"):
        body = _polled(server, f"/_query/async/{body['id']}", lambda b: not b.get("is_running"))
    elapsed = time.perf_counter() - started
    server.request("DELETE", f"/_query/async/{body['id']}")
    return elapsed, sorted((row[1], row[0]) for row in body["values"])


def sml_task(server: Server, docs: int) -> tuple[float, list[Row]]:
    """Seconds from creating the background task to its status COMPLETED, and its answer."""
    started = time.perf_counter()
    body = {"query": SML_TASK.format(docs=docs), "dtFieldName": "@timestamp", "dtStart": format_millis(START_MS),
            "dtEnd": format_millis(START_MS + SPAN_MS + 1000)}
    status, out = server.request("POST", "/_sme/async_requests/request", orjson.dumps(body))
    assert status == 200, out[:300]
    task = orjson.loads(out)["id"]
    state = _polled(server, f"/_sme/async_requests/status/{task}", lambda b: b["status"] in ("COMPLETED", "FAILED",
                                                                                               "STOPPED"))
    elapsed = time.perf_counter() - started
    assert state["status"] == "COMPLETED", state
    status, out = server.request("GET", f"/_sme/async_requests/response/{task}?from=0&to=10000")
    server.request("DELETE", f"/_sme/async_requests/delete/{task}")
    return elapsed, sorted((row["host.name"], row["count"]) for row in orjson.loads(out)["events"])


def bench_sml(server: Server, runs: int, docs: int) -> tuple[list[float], list[float], list[Row], list[Row]]:
    """The two, one after the other in each round (a warm-up round first), so both see the same machine."""
    bar, tick = progress("sml", 2 * (runs + 1))
    esql_times, sml_times = [], []
    for _ in range(runs + 1):
        esql_seconds, esql_answer = esql_async(server)
        tick()
        sml_seconds, sml_answer = sml_task(server, docs)
        tick()
        esql_times.append(esql_seconds)
        sml_times.append(sml_seconds)
    bar.close()
    return esql_times[1:], sml_times[1:], esql_answer, sml_answer


def report_sml(args: argparse.Namespace, esql_times: list[float], sml_times: list[float], esql_answer: list[Row],
               sml_answer: list[Row]) -> tuple[list[str], list[str]]:
    mismatches = [] if esql_answer == sml_answer else \
        [f"MISMATCH sml: the task's {len(sml_answer)} groups differ from ES|QL's {len(esql_answer)}"]
    esql_s, sml_s = statistics.median(esql_times), statistics.median(sml_times)
    ratios = [b / a for a, b in zip(esql_times, sml_times)]
    return ["## sml",
            f"- task: `{SML_TASK.format(docs=args.docs)}` over all {args.docs:,} events, from `POST "
            "/_sme/async_requests/request` to status COMPLETED; beside it `" + SML_ESQL + "` through `POST "
            f"/_query/async`, polled every {POLL_S * 1000:.0f} ms alike; {args.runs} rounds after a warm-up.",
            "",
            "| | median s | runs |\n| --- | ---: | --- |",
            f"| ES\\|QL async | {esql_s:.3f} | {', '.join(f'{t:.2f}' for t in esql_times)} |",
            f"| SML task | {sml_s:.3f} | {', '.join(f'{t:.2f}' for t in sml_times)} |",
            f"| ratio | {sml_s / esql_s:.2f}x | per round: {', '.join(f'{r:.2f}' for r in ratios)} "
            f"(target <= {SML_TARGET}x) |",
            "",
            f"- answers: {len(sml_answer)} groups, " + ("the same as ES|QL's" if not mismatches else "MISMATCH")], \
        mismatches


def p99(values: list[float]) -> float:
    """The 99th percentile of sorted ``values`` (nearest rank)."""
    return values[max(0, math.ceil(len(values) * 0.99) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def report_ingest(args: argparse.Namespace, rate: float, raw_rate: float) -> list[str]:
    return [
        "## ingest",
        f"- esquire: POST /logs/_bulk over HTTP from {args.clients} concurrent connections, {args.batch:,} documents "
        "per request, auto-generated ids; each request parsed, mapped and written in one transaction "
        "(WAL, synchronous=FULL) before it is answered.",
        f"- raw sqlite3: executemany of INSERT OR REPLACE of the same rows ({args.docs:,}: a unique 20-character _id, "
        "_version, _seq_no, _source = the exact document bytes sent to _bulk, one typed column per field) into a "
        "table with a UNIQUE _id and an index on @timestamp, WAL, synchronous=FULL, one BEGIN IMMEDIATE ... COMMIT "
        f"per {args.batch:,} rows; building the Python rows is not timed.",
        "",
        f"| | docs/s |\n| --- | ---: |\n| esquire _bulk | {rate:,.0f} |\n| raw sqlite3 | {raw_rate:,.0f} |\n"
        f"| ratio | {rate / raw_rate:.2f}x of raw (target >= 0.3x) |",
    ]


def report_queries(args: argparse.Namespace, on: list, off: list, raw: list) -> tuple[list[str], list[str]]:
    """The markdown table, and the mismatches (an empty list when every answer matched)."""
    lines = [
        "## queries",
        f"- esquire: es.esql.query(query=...) with the official elasticsearch client over HTTP (parse, plan, "
        f"run, JSON render and client decode included); median of {args.runs} after one warm-up.",
        "- pushdown off: the same on a second server over the same data directory, ESQUIRE_QUERY_PUSHDOWN=false.",
        f"- raw sqlite3: the SQL below with sqlite3 on the raw ingest's table (the same rows), fetchall, a "
        f"connection set up as Esquire's query workers set theirs up; median of {args.runs} after one warm-up.",
        "- every answer is checked against the SQL's (same groups and numbers, doubles to 1e-9 relative).",
        "",
        f"| query | esquire ms | raw sqlite3 ms | ratio | target {TARGET}x met | pushdown off ms | off ratio |",
        "| --- | ---: | ---: | ---: | :---: | ---: | ---: |",
    ]
    mismatches = []
    for i, (query, (t_on, rows_on), (t_off, rows_off), (t_raw, full)) in enumerate(zip(QUERIES, on, off, raw), 1):
        esql = query.esql.replace("|", "\\|")  # a pipe would end the markdown cell
        lines.append(f"| {i}. `{esql}` | {ms(t_on)} | {ms(t_raw)} | "
                     f"{t_on / t_raw:.1f}x | {'yes' if t_on / t_raw <= TARGET else 'no'} | {ms(t_off)} | "
                     f"{t_off / t_raw:.1f}x |")
        for side, rows in (("pushdown on", rows_on), ("pushdown off", rows_off)):
            if (why := check(query, rows, full)) is not None:
                mismatches.append(f"MISMATCH query {i} ({side}): {why}")
    lines += ["", "SQL:"] + [f"{i}. `{q.timed_sql}`" for i, q in enumerate(QUERIES, 1)]
    lines.append("answers: " + (f"{len(mismatches)} MISMATCHES" if mismatches else
                                f"all {2 * len(QUERIES)} match raw sqlite3 ({sum(len(r[1]) for r in raw):,} rows)"))
    return lines, mismatches


def report_async(stops: list[float], alone: float, together: float, polls: list[float]) -> list[str]:
    stop = ", ".join(ms(s) for s in stops) + " ms" if stops else "n/a: the query finished within 300 ms (more --docs)"
    poll = (f"median {ms(statistics.median(polls))} ms, p99 {ms(p99(polls))} ms "
            f"over {len(polls)} polls" if polls else "n/a: the queries finished too soon (more --docs)")
    return ["## async", f"- heavy query: `{HEAVY}`",
            f"- stop mid-scan: {stop} (target < 100 ms)",
            f"- heavy query alone: {alone:.2f} s; 4 at once: {together:.2f} s",
            f"- GET /_query/async/<id> while 4 heavy queries run: {poll} (target p99 < 20 ms)"]


def report_memory(small: tuple[int, int], large: tuple[int, int]) -> list[str]:
    return ["## memory", f"- peak RSS growth of the server and its workers while storing results: "
            f"{small[0] / 1024:.0f} MiB for {small[1]:,} rows, {large[0] / 1024:.0f} MiB for {large[1]:,} rows "
            "(flat = not proportional)"]


# --- export ------------------------------------------------------------------------------------

EXPORT_TYPES = ("csv", "xlsx", "json")
SME = "/_sme/async_requests"


@dataclass(frozen=True)
class ExportRun:
    seconds: float
    cpu_seconds: float  # of the server process, where exports run
    peak_kb: int  # RSS growth of the server and its workers
    rows: int  # counted in the file received
    size: int  # bytes received


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sme_task(server: Server, query: str) -> tuple[str, float]:
    """A background task over the whole week of logs, finished: its id and seconds to COMPLETED."""
    status, out = server.request("POST", f"{SME}/request", orjson.dumps(
        {"query": query, "dtStart": format_millis(START_MS - 86_400_000), "dtEnd": format_millis(START_MS + 2 * SPAN_MS)}))
    assert status == 200, out[:300]
    task_id, started = orjson.loads(out)["id"], time.perf_counter()
    state = _polled(server, f"{SME}/status/{task_id}", lambda b: b["status"] not in ("PENDING", "RUNNING"))
    assert state["status"] == "COMPLETED", state
    return task_id, time.perf_counter() - started


def export_rows(file_type: str, path: Path) -> int:
    """Rows in a downloaded export, by a reader independent of the writer's: csv, orjson, and for
    an XLSX the sheet's own dimension (parsing a million rows with openpyxl would take minutes)."""
    if file_type == "csv":
        with open(path, newline="", encoding="utf-8") as f:
            return sum(1 for _ in csv.reader(f)) - 1
    if file_type == "json":
        return len(orjson.loads(path.read_bytes()))
    with zipfile.ZipFile(path) as book, book.open("xl/worksheets/sheet1.xml") as sheet:
        head = sheet.read(4096).decode()
    return int(re.search(r'<dimension ref="A1:[A-Z]+(\d+)"', head)[1]) - 1


def download(server: Server, task_id: str, file_type: str, target: Path) -> ExportRun:
    """One export of every row, read by the client as it comes; the server sampled every 50 ms."""
    before = peak = rss_kb(server.proc.pid)
    watching = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not watching.wait(0.05):
            peak = max(peak, rss_kb(server.proc.pid))
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    cpu, started = cpu_seconds(server.proc.pid), time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    try:
        conn.request("POST", f"{SME}/file_download/{task_id}", orjson.dumps(
            {"file_type": file_type, "download_all_results": True}), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()[:300]
        with open(target, "wb") as f:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
    finally:
        conn.close()
    seconds, cpu = time.perf_counter() - started, cpu_seconds(server.proc.pid) - cpu
    watching.set()
    watcher.join()
    return ExportRun(seconds, cpu, peak - before, export_rows(file_type, target), target.stat().st_size)


def bench_export(server: Server, docs: int, runs: int) -> tuple[float, dict[str, list[ExportRun]]]:
    """Seconds the task took to COMPLETED, and 1 + ``runs`` downloads of each type (the first a
    warm-up for the times, not for the memory: a first export's growth is growth too)."""
    task_id, took = sme_task(server, f"source logs qsize={docs}")
    bar, tick = progress("export", len(EXPORT_TYPES) * (runs + 1))
    results: dict[str, list[ExportRun]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for file_type in EXPORT_TYPES:
            target = Path(tmp) / f"export.{file_type}"
            done = []
            for _ in range(runs + 1):
                done.append(download(server, task_id, file_type, target))
                tick()
            results[file_type] = done
    bar.close()
    server.request("DELETE", f"{SME}/delete/{task_id}")
    return took, results


def bench_xlsx_writers(rows: int = 100_000) -> tuple[float, float]:
    """Rows/s (CPU) of the service's XLSX writer alone and of XlsxWriter (constant_memory mode,
    typed writes; the writer the service used before) on the same cells, like the export's (7
    strings, 3 integers a row), the values ready: the writer's share of an export's cost, beside
    a reference."""
    import xlsxwriter  # a test dependency: the reference

    from service.api.xlsx import SheetWriter

    logs = synthetic_logs(rows)
    cells = list(zip([format_millis(ms) for ms in logs["@timestamp"]], logs["host.name"], logs["process.name"],
                     logs["user.name"], logs["event.code"], logs["status"], logs["bytes"], logs["message"],
                     ["logs"] * rows, [f"{i:020d}" for i in range(rows)]))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.process_time()
        with open(f"{tmp}/ours.xlsx", "wb") as out:
            sheet = SheetWriter(out, "results", Path(tmp), 10)
            for at in range(0, rows, 1000):
                sheet.write_rows(cells[at:at + 1000])
            sheet.close()
        ours = rows / (time.process_time() - started)
        book = xlsxwriter.Workbook(f"{tmp}/theirs.xlsx", {"constant_memory": True, "tmpdir": tmp})
        theirs = book.add_worksheet("results")
        string, number = theirs.write_string, theirs.write_number
        started = time.process_time()
        for row, values in enumerate(cells, 1):
            for col, value in enumerate(values):
                if value.__class__ is str:
                    string(row, col, value)
                else:
                    number(row, col, value)
        book.close()
        return ours, rows / (time.process_time() - started)


def report_export(args: argparse.Namespace, measured: tuple[float, dict[str, list[ExportRun]]],
                  writers: tuple[float, float]) -> tuple[list[str], list[str]]:
    took, results = measured
    targets = {"csv": 200_000, "xlsx": 50_000}
    lines = ["## export",
             f"- task: `source logs qsize={args.docs}` over every document, {took:.1f} s to COMPLETED; its rows "
             "have 10 fields, the documents' 8 and _index, _id: 7 strings and 3 integers a row.",
             f"- each type: POST {SME}/file_download/<id> with download_all_results, the body read by the client "
             f"as it comes and saved; median of {args.runs} after a warm-up (min-max in brackets: the machine "
             "may be shared). cpu: rows per CPU second of the server process, which contention inflates less.",
             "- peak RSS growth: of the server and its workers over the RSS before the download, sampled every "
             "50 ms, the largest of all the runs (the warm-up's too).",
             "",
             "| type | rows/s | range | rows/cpu-s | target met | peak RSS growth | MB |",
             "| --- | ---: | ---: | ---: | :---: | ---: | ---: |"]
    mismatches = []
    for file_type, runs in results.items():
        rates = sorted(r.rows / r.seconds for r in runs[1:])
        rate, cpu_rate = statistics.median(rates), statistics.median(r.rows / r.cpu_seconds for r in runs[1:])
        peak_mib = max(r.peak_kb for r in runs) / 1024
        target = targets.get(file_type)
        met = "n/a" if target is None else "yes" if rate >= target and peak_mib < 100 else "no"
        lines.append(f"| {file_type} | {rate:,.0f} | {rates[0]:,.0f}-{rates[-1]:,.0f} | {cpu_rate:,.0f} | {met} "
                     f"{'' if target is None else f'(>= {target:,}, < 100 MiB)'} | {peak_mib:.0f} MiB | "
                     f"{runs[0].size / 1e6:.0f} |")
        mismatches += [f"MISMATCH export {file_type}: {r.rows:,} rows in the file, {args.docs:,} stored"
                       for r in runs if r.rows != args.docs]
    ours, theirs = writers
    lines.append(f"\nXLSX writers alone on the same 100k rows, values ready: the service's {ours:,.0f} rows per "
                 f"CPU second; XlsxWriter (constant_memory, typed writes) {theirs:,.0f}: {ours / theirs:.1f}x.")
    return lines, mismatches


# --- binary ----------------------------------------------------------------------------------

BINARY_TARGET_S = 1.5  # the target: from exec to the first answer of GET /


def first_answer_s(command: list[str], runs: int) -> list[float]:
    """Seconds from starting ``command serve`` on an empty data directory to its first answer
    of ``GET /``, ``runs`` times after a warm-up (the disk warm, as the target says)."""
    times = []
    for _ in range(runs + 1):
        port = free_port()
        with tempfile.TemporaryDirectory() as data:
            started = time.perf_counter()
            proc = subprocess.Popen([*command, "serve", "--port", str(port), "--data-dir", data,
                                     "--log-level", "error"], cwd=ROOT)
            try:
                while True:
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                        break
                    except OSError:
                        if proc.poll() is not None:
                            raise RuntimeError(f"{command} exited with {proc.returncode}") from None
                        time.sleep(0.005)
                times.append(time.perf_counter() - started)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    return times[1:]


def bench_binary(runs: int) -> tuple[Path, list[float], list[float]]:
    """The executable ``scripts/build-binary`` makes (built now, into a temporary directory),
    its start beside ``python -m service`` from the venv."""
    dist = Path(tempfile.mkdtemp(prefix="esquire-binary-"))
    subprocess.run([str(ROOT / "scripts" / "build-binary"), "--dist", str(dist)], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return dist / "esquire", first_answer_s([str(dist / "esquire")], runs), \
        first_answer_s([sys.executable, "-m", "service"], runs)


def report_binary(binary: Path, frozen: list[float], venv: list[float]) -> list[str]:
    median = statistics.median(frozen)
    lines = ["## binary",
             f"- `scripts/build-binary` (PyInstaller --onefile): {binary.stat().st_size / 1e6:.1f} MB.",
             "- from exec of `serve` on an empty data directory to the first answer of GET /, after a warm-up:",
             "",
             "| | median s | runs |\n| --- | ---: | --- |",
             f"| binary | {median:.3f} | {', '.join(f'{t:.2f}' for t in frozen)} |",
             f"| python -m service (venv) | {statistics.median(venv):.3f} | {', '.join(f'{t:.2f}' for t in venv)} |",
             "",
             f"- target < {BINARY_TARGET_S} s: {'met' if median < BINARY_TARGET_S else 'NOT met'}"]
    shutil.rmtree(binary.parent, ignore_errors=True)
    return lines


# --- the run -------------------------------------------------------------------------------------


def sections(value: str) -> set[str]:
    chosen = set(value.split(","))
    if not chosen <= set(SECTIONS):
        raise argparse.ArgumentTypeError(f"sections are {', '.join(SECTIONS)}")
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query (the median is shown)")
    parser.add_argument("--only", type=sections, default=set(SECTIONS), help=f"some of {','.join(SECTIONS)}")
    parser.add_argument("--batch", type=int, default=5000, help="documents per _bulk request")
    parser.add_argument("--clients", type=int, default=2, help="concurrent _bulk connections")
    return parser.parse_args(argv)


@contextlib.contextmanager
def served(data_dir: Path, **options: bool) -> Iterator[Server]:
    server = Server(data_dir, **options)
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "binary" in args.only:  # needs no data: first, and alone when it is the only section
        print("\n".join([f"# scripts/bench --runs {args.runs}", "", *report_binary(*bench_binary(args.runs))]))
        if args.only == {"binary"}:
            return 0
    started = time.perf_counter()
    logs = synthetic_logs(args.docs)
    bodies = bulk_bodies(logs, args.batch)
    print(f"generated {args.docs:,} log documents (seed {SEED}) in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    out = [f"# scripts/bench --docs {args.docs:,} --runs {args.runs}", ""]
    mismatches: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        raw_db, data_dir = Path(tmp) / "raw.db", Path(tmp) / "data"
        raw_rate = bench_raw_ingest(raw_db, logs, bodies)
        del logs
        with served(data_dir) as server:
            rate = bench_ingest(server, bodies, args.docs, args.clients)
            if "eql" in args.only:
                lines, eql_mismatches = report_eql(args, bench_eql(server, args.runs),
                                                   bench_eql_reference(bodies, args.runs))
                out += lines + [""]
                mismatches += eql_mismatches
            del bodies
            if "ingest" in args.only:
                out += report_ingest(args, rate, raw_rate) + [""]
            if "async" in args.only:
                stops = bench_stop(server)
                out += report_async(stops, *bench_concurrency(server), bench_polling(server)) + [""]
            if "memory" in args.only:
                out += report_memory(bench_result_memory(server, 100_000),
                                     bench_result_memory(server, 1_000_000)) + [""]
            # sml: a background task beside the same ES|QL query
            if "sml" in args.only:
                lines, sml_mismatches = report_sml(args, *bench_sml(server, args.runs, args.docs))
                out += lines + [""]
                mismatches += sml_mismatches

            # export: background task results to CSV and XLSX
            if "export" in args.only:
                lines, export_mismatches = report_export(args, bench_export(server, args.docs, args.runs),
                                                         bench_xlsx_writers())
                out += lines + [""]
                mismatches += export_mismatches

            liveness = bench_liveness(server) if "liveness" in args.only else None
            on = bench_esql(server, args.runs, "esquire") if "queries" in args.only else []
        if liveness is not None:
            out += report_liveness(liveness, bench_graceful_stop(data_dir)) + [""]
        if "queries" in args.only:
            raw = bench_raw_queries(raw_db, args.runs)
            with served(data_dir, pushdown=False) as server:
                off = bench_esql(server, args.runs, "no-push")
            lines, query_mismatches = report_queries(args, on, off, raw)
            out += lines
            mismatches += query_mismatches
    print("\n".join(out))
    for line in mismatches:
        print(line)
        print(line, file=sys.stderr)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
