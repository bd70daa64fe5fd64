"""Check, changing nothing, that ``esquire serve`` can start with these settings, or that the
Esquire serving them is there.

Three checks; each that fails prints one line on stderr, and the exit status is 1 (2 for
settings that do not parse):

  data directory  readable and writable by this user, or creatable where it does not exist;
  schema          the database, if there is one yet, has every migration of this Esquire
                  applied and none from a newer version;
  port            free, or answered by Esquire (``GET /`` answers as Elasticsearch does; a
                  401 of a service with security on counts).

Nothing is created or migrated: the database is read read-only, and only through its
write-ahead log when one is there. ``--before-start`` is the check for systemd's
``ExecStartPre=``: the service is about to listen, so the port must be free, and a schema
behind this Esquire passes (the start applies the missing migrations). Without it, it
suits a container's ``HEALTHCHECK``."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sqlite3
import ssl
import sys
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import orjson

from ..settings import Settings, SettingsError, load_settings
from ..store.migrations import MigrationError, load_migrations, refuse_newer

HELP = "check the data directory, schema and port (for ExecStartPre and health checks)"

PROBE_TIMEOUT_S = 5.0
# Where a service bound to every address is reached from this machine.
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def add_arguments(check: argparse.ArgumentParser) -> None:
    check.add_argument("--data-dir", type=Path, help="the data directory to check (default ./data)")
    check.add_argument("--host", help="the address the service listens on (default 127.0.0.1)")
    check.add_argument("--port", type=int, help="the port it listens on (default 9200)")
    check.add_argument("--config", type=Path, help="a TOML file of settings, as for serve")
    check.add_argument("--before-start", action="store_true",
                       help="the check before serve starts: the port must be free, pending migrations pass")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings({"data_dir": args.data_dir, "host": args.host, "port": args.port},
                                 config_file=args.config)
    except SettingsError as exc:
        print(f"esquire check: {exc}", file=sys.stderr)
        return 2
    problems = data_dir_problems(settings.data_dir)
    if not problems:
        problems += schema_problems(settings.db_path, before_start=args.before_start)
    problems += port_problems(settings, before_start=args.before_start)
    for problem in problems:
        print(f"esquire check: {problem}", file=sys.stderr)
    if not problems:
        print(f"esquire check: ok ({settings.data_dir}, {settings.host}:{settings.port})")
    return 1 if problems else 0


def data_dir_problems(data_dir: Path) -> list[str]:
    """The directory and the database files in it are readable and writable by this user;
    a directory not there yet needs its nearest existing parent writable."""
    who = f"this user (uid {os.getuid()})"
    if not data_dir.exists():
        parent = data_dir.absolute().parent
        while not parent.exists():
            parent = parent.parent
        if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return []
        return [f"data directory {data_dir} does not exist, and {who} cannot create it in {parent}"]
    if not data_dir.is_dir():
        return [f"data directory {data_dir} is not a directory"]
    if not os.access(data_dir, os.R_OK | os.W_OK | os.X_OK):
        return [f"data directory {data_dir} is not readable and writable by {who}"]
    return [f"{path} is not readable and writable by {who}"
            for path in sorted(data_dir.glob("esquire.db*")) if not os.access(path, os.R_OK | os.W_OK)]


def schema_problems(db_path: Path, *, before_start: bool) -> list[str]:
    """The database's recorded migrations against this Esquire's; no database is a first start."""
    if not db_path.exists():
        return []
    migrations = load_migrations()
    expected = [(m.version, m.name) for m in migrations]
    try:
        recorded = _recorded_migrations(db_path)
    except sqlite3.Error as exc:
        return [f"cannot read the database {db_path}: {exc}"]
    current = recorded[-1][0] if recorded else 0
    try:
        refuse_newer(current, migrations)
    except MigrationError as exc:
        return [str(exc)]
    if recorded != expected[:len(recorded)]:
        strange = ", ".join(f"{v:04d}_{n}" for v, n in recorded if (v, n) not in expected)
        return [f"database {db_path} records migrations this Esquire does not have: {strange}"]
    if current < len(expected) and not before_start:
        return [f"database schema version {current} is behind this Esquire's ({len(expected)}): "
                "serve applies the missing migrations when it starts"]
    return []


def _recorded_migrations(db_path: Path) -> list[tuple[int, str]]:
    """``(version, name)`` of every applied migration, in order. With a write-ahead log there
    (a service running, or one that died), the database is read through it, as SQLite's
    read-only mode does; without one the file is all there is, and ``immutable`` reads it
    creating no ``-shm`` file, which a check run as another user (root) would leave behind,
    unopenable by the service's own."""
    mode = "ro" if db_path.with_name(db_path.name + "-wal").exists() else "ro&immutable=1"
    conn = sqlite3.connect(f"file:{db_path}?mode={mode}", uri=True)
    try:
        tables = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchall()
        if not tables:  # a database no start has migrated yet
            return []
        return conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    finally:
        conn.close()


def port_problems(settings: Settings, *, before_start: bool) -> list[str]:
    """The port is free (as the service binds it: every address ``host`` names, with
    ``SO_REUSEADDR``), or Esquire answers there; free only, ``before_start``."""
    if settings.port == 0:  # a port the system picks at each start
        return []
    where = f"{settings.host or '*'}:{settings.port}"
    try:
        if _port_free(settings.host, settings.port):
            return []
    except OSError as exc:
        return [f"cannot listen on {where}: {exc.strerror or exc}"]
    if before_start:
        return [f"port {where} is in use: serve could not listen there"]
    not_esquire = _not_esquire(settings)
    return [f"port {where} is in use by something that is not Esquire: {not_esquire}"] if not_esquire else []


def _port_free(host: str, port: int) -> bool:
    for family, kind, proto, _, address in socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                                flags=socket.AI_PASSIVE):
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return False
                raise
    return True


def _not_esquire(settings: Settings) -> str:
    """Why what answers ``GET /`` at the service's address is not Esquire; "" when it is.

    Not ``client.Service``: the identification needs the status and headers of a refusal
    too (a secured Esquire's 401), and accepts any certificate: it names the product, it
    does not trust the peer with anything."""
    host = _WILDCARDS.get(settings.host, settings.host)
    scheme = "https" if settings.tls_cert else "http"
    url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{settings.port}/"
    context = ssl._create_unverified_context() if settings.tls_cert else None
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S, context=context) as response:
            status, headers, body = response.status, response.headers, response.read(65536)
    except urllib.error.HTTPError as exc:
        status, headers, body = exc.code, exc.headers, exc.read(65536)
    except (urllib.error.URLError, OSError) as exc:
        return f"GET {url} failed: {getattr(exc, 'reason', exc)}"
    return "" if _speaks_elasticsearch(status, headers, body) else f"GET {url} answered {status}, not as Elasticsearch"


def _speaks_elasticsearch(status: int, headers: Message, body: bytes) -> bool:
    if headers.get("X-Elastic-Product") != "Elasticsearch":
        return False
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(answer, dict):
        return False
    if status == 200:
        return isinstance(answer.get("version"), dict) and "number" in answer["version"] and "tagline" in answer
    error = answer.get("error")
    return status == 401 and isinstance(error, dict) and error.get("type") == "security_exception"
