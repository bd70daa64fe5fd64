"""Command line: ``esquire serve`` runs the service, ``esquire query`` runs a query on it
(also as ``python -m service ...``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import structlog
from aiohttp import web

from .api.middleware import EsRunner
from .app import create_app
from .client import FORMATS, ClientError, Service, run_query
from .logs import configure_logging
from .runtime import DataDirInUse, tune_gc
from .settings import LOG_FORMATS, LOG_LEVELS, Settings, SettingsError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="esquire", description="A local Elasticsearch-compatible query service.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 9200)")
    serve.add_argument("--data-dir", type=Path, help="directory of the SQLite store (default ./data)")
    serve.add_argument("--config", type=Path, help="a TOML file of settings")
    serve.add_argument("--log-format", choices=LOG_FORMATS)
    serve.add_argument("--log-level", choices=LOG_LEVELS)
    serve.add_argument("--security", action="store_const", const=True,
                       help="require authentication (users, roles, API keys), as ESQUIRE_SECURITY=true")
    serve.add_argument("--insecure", action="store_const", const=True,
                       help="serve a non-loopback address without authentication, on purpose")
    serve.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain), as ESQUIRE_TLS_CERT")
    serve.add_argument("--tls-key", help="the certificate's PEM private key, as ESQUIRE_TLS_KEY")
    serve.add_argument("--bootstrap-password", help="the elastic superuser's password at the first start with "
                       "security (visible to other local users in the process list: prefer "
                       "ESQUIRE_BOOTSTRAP_PASSWORD or ELASTIC_PASSWORD)")
    query = sub.add_parser("query", help="run an ES|QL query on a running service, with a progress bar")
    query.add_argument("query", help="the ES|QL query, e.g. 'FROM logs | STATS n = COUNT(*) BY host.name'")
    query.add_argument("--url", default=os.environ.get("ESQUIRE_URL", "http://127.0.0.1:9200"),
                       help="the service (default $ESQUIRE_URL or http://127.0.0.1:9200); with security on, "
                            "http://user:password@host:port or an API key in $ESQUIRE_API_KEY")
    query.add_argument("--format", choices=FORMATS, default="txt", help="output format (default txt)")
    query.add_argument("--no-progress", action="store_true", help="no progress bar (the default when stderr "
                       "is not a terminal)")
    return parser


async def serve(settings: Settings) -> None:
    log = structlog.get_logger("esquire")
    tls = settings.tls_context()  # a bad certificate stops the start before anything is opened
    app = create_app(settings)
    # The grace is spent twice at most: the app's on_shutdown waits for running queries,
    # then aiohttp waits for the other requests in flight before it cancels them.
    runner = EsRunner(app, handle_signals=False, access_log=None, shutdown_timeout=settings.shutdown_grace_seconds)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=tls)
    await site.start()
    tune_gc()
    log.info("started", host=settings.host, port=settings.port, data_dir=str(settings.data_dir),
             security=settings.security_enabled, scheme="https" if tls else "http")
    if settings.insecure and not settings.security_enabled:
        log.warning("security_disabled", host=settings.host,
                    message=f"--insecure: serving {settings.host or 'every address'} without authentication; "
                            "anyone who can reach it can read and change every index")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    await runner.cleanup()
    log.info("stopped")


def query(args: argparse.Namespace) -> int:
    try:
        service = Service(args.url, api_key=os.environ.get("ESQUIRE_API_KEY"))
        return run_query(service, args.query, args.format, sys.stdout, sys.stderr,
                         progress=not args.no_progress and sys.stderr.isatty())
    except ClientError as exc:
        print(f"esquire: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "query":
        return query(args)
    flags = {"host": args.host, "port": args.port, "data_dir": args.data_dir,
             "log_format": args.log_format, "log_level": args.log_level, "security": args.security,
             "insecure": args.insecure, "bootstrap_password": args.bootstrap_password,
             "tls_cert": args.tls_cert, "tls_key": args.tls_key}
    try:
        settings = load_settings(flags, config_file=args.config)
    except SettingsError as exc:
        print(f"esquire: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    try:
        asyncio.run(serve(settings))
    except DataDirInUse as exc:
        print(f"esquire: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"esquire: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
