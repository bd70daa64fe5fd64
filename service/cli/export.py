"""Export the stored result of an SML background task to a file: JSON (an array of the rows),
CSV (a header row, then a row each) or XLSX (one sheet), by POST
/_sme/async_requests/file_download/<id>.

The task must have finished (completed, stopped or failed: what it stored is exported); keep
one for export with esquire query --sml --keep, or create it through the API. By default the
first 10 000 rows are exported, as the API does; --all exports every row, --size N the first
N. The file is streamed to --output FILE (- for stdout), by default to the name the service
gives it (the task id and the format's extension) in the current directory, which must not
exist yet; it is written to a temporary file beside it and renamed once whole, so an
interrupted export leaves nothing half-written. A progress bar on stderr (when stderr is a
terminal) shows the bytes received of the file's size.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import urllib.parse
from pathlib import Path
from typing import IO, Any

from ..client import INTERRUPTED, SML_BASE, ClientError, ProgressBar, Service, add_service_arguments

HELP = "export an SML background task's result as csv, xlsx or json, with a progress bar"
EPILOG = """examples:
  esquire export Yz4xN2FmQk9lUXVXb1lTd0 --format csv --all
  esquire export Yz4xN2FmQk9lUXVXb1lTd0 --format xlsx --output week.xlsx
  esquire export Yz4xN2FmQk9lUXVXb1lTd0 --format json --size 100 --output - | jq .
"""
CHUNK = 1 << 20
EXPORT_TIMEOUT_S = 3600.0  # the service writes the whole file before it sends a byte of it


def add_arguments(export: argparse.ArgumentParser) -> None:
    export.epilog = EPILOG
    export.add_argument("id", help="the background task's id")
    export.add_argument("--format", choices=("csv", "xlsx", "json"), default="csv", help="the file's format "
                        "(default csv)")
    export.add_argument("--output", metavar="FILE", help="where to write it (- for stdout; default the name the "
                        "service gives, in the current directory)")
    rows = export.add_mutually_exclusive_group()
    rows.add_argument("--all", action="store_true", help="every stored row (default the first 10 000)")
    rows.add_argument("--size", type=int, metavar="N", help="the first N rows")
    export.add_argument("--zip", action="store_true", help="the file zipped (the service's compress_results)")
    add_service_arguments(export)
    export.add_argument("--no-progress", action="store_true", help="no progress bar (the default when stderr "
                        "is not a terminal)")


def run(args: argparse.Namespace) -> int:
    service = Service.of(args)
    service.timeout_s = EXPORT_TIMEOUT_S
    body: dict[str, Any] = {"file_type": args.format, "download_all_results": args.all, "compress_results": args.zip}
    if args.size is not None:
        body["download_results_size"] = args.size
    try:
        response = service.open("POST", f"{SML_BASE}/file_download/{urllib.parse.quote(args.id, safe='')}", body)
    except ClientError as exc:
        print(f"esquire: {'no background task ' + args.id if exc.status == 404 else exc}", file=sys.stderr)
        return 1
    bar = ProgressBar(sys.stderr, "export") if not args.no_progress and sys.stderr.isatty() else None
    with response:
        if args.output == "-":
            return _copy(response, sys.stdout.buffer, bar)
        target = Path(args.output or Path(response.headers.get_filename() or f"{args.id}.{args.format}").name)
        if args.output is None and target.exists():
            print(f"esquire export: {target} exists: give --output FILE", file=sys.stderr)
            return 1
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                status = _copy(response, out, bar)
            if status == 0:
                os.chmod(temporary, 0o666 & ~_umask())  # as an ordinary new file: mkstemp's is private
                os.replace(temporary, target)
                print(f"exported {target.stat().st_size:,} bytes to {target}", file=sys.stderr)
            return status
        finally:
            Path(temporary).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _copy(response: Any, out: IO[bytes], bar: ProgressBar | None) -> int:
    """The response's body into ``out``, a chunk at a time, drawn on ``bar``: 0, or 1 when the
    connection is lost, ``INTERRUPTED`` after Ctrl-C."""
    total, done = int(response.headers.get("Content-Length") or 0), 0
    try:
        while chunk := response.read(CHUNK):
            out.write(chunk)
            done += len(chunk)
            if bar is not None:
                bar.draw(done, total, f"{done / 1e6:,.1f}{f'/{total / 1e6:,.1f}' if total else ''} MB")
    except KeyboardInterrupt:
        print("esquire export: interrupted", file=sys.stderr)
        return INTERRUPTED
    except OSError as exc:
        print(f"esquire export: lost the service after {done:,} bytes: {exc}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    if total and done != total:
        print(f"esquire export: {done:,} of {total:,} bytes received", file=sys.stderr)
        return 1
    return 0
