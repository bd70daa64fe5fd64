"""Run an ES|QL query on a running service as an async query, with a progress bar on stderr
(rows scanned of rows total) while it runs; Ctrl-C stops it and prints what it found so far."""

from __future__ import annotations

import argparse
import os
import sys

from ..client import FORMATS, ClientError, Service, run_query

HELP = "run an ES|QL query on a running service, with a progress bar"


def add_arguments(query: argparse.ArgumentParser) -> None:
    query.add_argument("query", help="the ES|QL query, e.g. 'FROM logs | STATS n = COUNT(*) BY host.name'")
    query.add_argument("--url", default=os.environ.get("ESQUIRE_URL", "http://127.0.0.1:9200"),
                       help="the service (default $ESQUIRE_URL or http://127.0.0.1:9200); with security on, "
                            "http://user:password@host:port or an API key in $ESQUIRE_API_KEY")
    query.add_argument("--format", choices=FORMATS, default="txt", help="output format (default txt)")
    query.add_argument("--no-progress", action="store_true", help="no progress bar (the default when stderr "
                       "is not a terminal)")


def run(args: argparse.Namespace) -> int:
    try:
        service = Service(args.url, api_key=os.environ.get("ESQUIRE_API_KEY"))
        return run_query(service, args.query, args.format, sys.stdout, sys.stderr,
                         progress=not args.no_progress and sys.stderr.isatty())
    except ClientError as exc:
        print(f"esquire: {exc}", file=sys.stderr)
        return 1
