"""Run a query on a running service, in ES|QL (the default), EQL (--eql --index I) or SML
(--sml, over --from/--to), and print its result.

The query runs in the background on the service (ES|QL's async query, EQL's async search,
an SML background task); while it runs, a progress bar on stderr shows what the task reports
(rows scanned of rows total; for SML the share of its time range read). Ctrl-C stops it: an
ES|QL query or an SML task keeps the rows read so far, which are printed, and the exit status
is 130; an EQL search has no such stop (nor in Elasticsearch), so it is cancelled and deleted,
nothing is printed, and the status is 130 too.

The result is printed on stdout as a table (txt), csv, tsv or the service's own JSON, or
written to --output FILE; xlsx always goes to a file. Warnings go to stderr. The exit status
is 1 when the query is refused or fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..client import (FORMATS, ClientError, EqlSearch, EsqlSearch, Search, Service, SmlSearch,
                      add_service_arguments, run_search)

HELP = "run an ES|QL, EQL or SML query on a running service, with a progress bar"
EPILOG = """examples:
  esquire query 'FROM logs | STATS n = COUNT(*) BY host.name | SORT n DESC | LIMIT 10'
  esquire query --format csv --output hosts.csv 'FROM logs | KEEP @timestamp, host.name'
  esquire query --eql --index logs --size 100 'process where process.name == "cmd.exe"'
  esquire query --sml --from now-1d --to now 'source logs | stats count() by host.name'
  esquire query --sml --from 2024-05-01 --to 2024-05-02 --format xlsx --output day.xlsx 'source logs'
"""


def add_arguments(query: argparse.ArgumentParser) -> None:
    query.epilog = EPILOG
    query.add_argument("query", help="the query text, in the language chosen (ES|QL unless --eql or --sml)")
    language = query.add_mutually_exclusive_group()
    language.add_argument("--eql", action="store_true", help="an EQL query, over --index")
    language.add_argument("--sml", action="store_true", help="an SML query, as a background task over a time range")
    query.add_argument("--index", help="EQL: the index, pattern or comma-separated list to search (required)")
    query.add_argument("--size", type=int, help="EQL: at most this many hits (the service's default: 10)")
    query.add_argument("--from", dest="start", metavar="TIME",
                       help="SML: the range's start (date math: now-1d, 2024-05-01, epoch ms; default the "
                            "service's sme.core.global_dt_params.dt_start, now-15m)")
    query.add_argument("--to", dest="end", metavar="TIME", help="SML: the range's end (default now)")
    query.add_argument("--time-field", help="SML: the events' time field (default the service's, @timestamp)")
    query.add_argument("--keep", action="store_true",
                       help="SML: keep the background task on the service (for esquire export) instead of "
                            "deleting it once printed")
    add_service_arguments(query)
    query.add_argument("--format", choices=FORMATS, default="txt", help="output format (default txt, a table)")
    query.add_argument("--output", type=Path, metavar="FILE", help="write the result to FILE (xlsx needs one)")
    query.add_argument("--no-progress", action="store_true", help="no progress bar (the default when stderr "
                       "is not a terminal)")


# The flags of one language only, by their attribute: a flag given for another is refused.
_OWN_FLAGS = {"eql": {"index": "--index", "size": "--size"},
              "sml": {"start": "--from", "end": "--to", "time_field": "--time-field", "keep": "--keep"}}


def _search(args: argparse.Namespace, service: Service) -> Search:
    """The query's language, from the flags; ``ValueError`` for a flag of another language."""
    language = "eql" if args.eql else "sml" if args.sml else "esql"
    for owner, flags in _OWN_FLAGS.items():
        given = [flag for name, flag in flags.items() if getattr(args, name) not in (None, False)]
        if owner != language and given:
            raise ValueError(f"{given[0]} is for --{owner}")
    if language == "eql":
        if not args.index:
            raise ValueError("--eql needs --index")
        return EqlSearch(service, args.index, args.query, args.size)
    if language == "sml":
        return SmlSearch(service, args.query, args.start, args.end, args.time_field, args.keep)
    return EsqlSearch(service, args.query)


def run(args: argparse.Namespace) -> int:
    try:
        service = Service.of(args)
        search = _search(args, service)
        if args.format == "xlsx" and args.output is None:
            raise ValueError("xlsx is written to a file: give --output FILE")
    except ValueError as exc:
        print(f"esquire query: {exc}", file=sys.stderr)
        return 2
    try:
        return run_search(search, args.format, sys.stdout, sys.stderr, output=args.output,
                          progress=not args.no_progress and sys.stderr.isatty())
    except ClientError as exc:
        print(f"esquire: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the search was submitted: nothing runs, nothing to show
        print("esquire: interrupted", file=sys.stderr)
        return 130
