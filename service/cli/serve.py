"""Run the HTTP service over a data directory, until SIGINT or SIGTERM.

Settings come from the flags, then ``ESQUIRE_*`` environment variables, then ``--config``
(a TOML file); see the README for every setting."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import structlog

from ..logs import configure_logging
from ..notify import notify
from ..runtime import DataDirInUse, tune_gc
from ..settings import LOG_FORMATS, LOG_LEVELS, Settings, SettingsError, load_settings

HELP = "run the HTTP service"


def add_arguments(serve: argparse.ArgumentParser) -> None:
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


def settings_of(args: argparse.Namespace) -> Settings:
    flags = {"host": args.host, "port": args.port, "data_dir": args.data_dir,
             "log_format": args.log_format, "log_level": args.log_level, "security": args.security,
             "insecure": args.insecure, "bootstrap_password": args.bootstrap_password,
             "tls_cert": args.tls_cert, "tls_key": args.tls_key}
    return load_settings(flags, config_file=args.config)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_of(args)
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


async def serve(settings: Settings) -> None:
    # Imported here, not with the module: every command's parser imports this module, and the
    # app (aiohttp and the query engines) takes about a second to import.
    from aiohttp import web

    from ..api.middleware import EsRunner
    from ..app import create_app

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
    # Ready once it listens and a stop request is handled: a SIGTERM right after READY=1 is a clean stop.
    notify("READY=1", f"STATUS=serving {'https' if tls else 'http'}://{settings.host}:{settings.port}, "
                      f"data in {settings.data_dir}")
    await stop.wait()
    notify("STOPPING=1", "STATUS=stopping: finishing the requests and queries in flight")
    log.info("stopping")
    await runner.cleanup()
    log.info("stopped")
