"""List the tasks running on a service, or cancel one.

esquire tasks (or esquire tasks list) prints the running tasks of GET /_tasks?detailed: each
one's id (node:number, what cancel takes), action (indices:data/read/esql[a] for an ES|QL
async query, with its child indices:data/read/esql/compute; indices:data/read/eql... for an
EQL search, indices:data/read/sml... for an SML background task), its description (the query), its progress (rows scanned of rows total, as its status reports
them) and how long it has run. The listing's own task is left out. With security on, a user
sees their own tasks.

esquire tasks cancel TASK_ID cancels one (POST /_tasks/<id>/_cancel), as Elasticsearch does:
the query ends at once with an error (task_cancelled_exception), no partial result; to keep
what a query has read so far, stop it instead (Ctrl-C in esquire query). The exit status is 1
when the task is not found or cannot be cancelled.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from ..client import ClientError, Result, Service, add_service_arguments, write_result
from ..core.tasks import LIST_ACTION

HELP = "list the running tasks (queries, background tasks), or cancel one"
EPILOG = """examples:
  esquire tasks
  esquire tasks --format json
  esquire tasks cancel 0Lr6XVt1Qp2bR6AsxwrOxg:42
"""
DESCRIPTION_CHARS = 60  # a txt table's description is cut here (csv, tsv and json keep it whole)
COLUMNS = ["id", "action", "description", "progress", "running"]


def add_arguments(tasks: argparse.ArgumentParser) -> None:
    tasks.epilog = EPILOG
    tasks.add_argument("verb", nargs="?", metavar="{list,cancel}", choices=("list", "cancel"), default="list",
                       help="list the tasks (the default), or cancel one")
    tasks.add_argument("task_id", nargs="?", metavar="TASK_ID", help="cancel: the task's node:number id")
    tasks.add_argument("--actions", help="list: only tasks whose action matches (wildcards, comma-separated), "
                       "e.g. '*esql*'")
    tasks.add_argument("--format", choices=("txt", "csv", "tsv", "json"), default="txt",
                       help="list: output format (default txt, a table)")
    add_service_arguments(tasks)


def progress(status: dict[str, Any]) -> str:
    """``scanned/total rows (share)`` from a query task's status, empty for another task."""
    scanned, total = status.get("rows_scanned"), status.get("rows_total")
    if scanned is None or not total:
        return ""
    return f"{scanned:,}/{total:,} rows ({scanned / total:.0%})"


def table(listing: dict[str, Any], cut: bool) -> Result:
    """The tasks of a ``group_by=none`` listing as rows, oldest first, the listing's own left out."""
    tasks = sorted((t for t in listing["tasks"] if t["action"] != LIST_ACTION), key=lambda t: t["start_time_in_millis"])
    rows = []
    for task in tasks:
        description = task.get("description", "")
        if cut and len(description) > DESCRIPTION_CHARS:
            description = description[:DESCRIPTION_CHARS - 1] + "…"
        rows.append([f"{task['node']}:{task['id']}", task["action"], description, progress(task.get("status", {})),
                     f"{task['running_time_in_nanos'] / 1e9:.1f} s"])
    return Result(COLUMNS, rows, {"tasks": tasks})


def run(args: argparse.Namespace) -> int:
    if (args.verb == "cancel") != (args.task_id is not None):
        print("esquire tasks: cancel takes one TASK_ID, list none", file=sys.stderr)
        return 2
    service = Service.of(args)
    try:
        if args.verb == "cancel":
            return _cancel(service, args.task_id)
        params = {"detailed": "true", "group_by": "none", **({"actions": args.actions} if args.actions else {})}
        listing = service.json("GET", "/_tasks", **params)
    except ClientError as exc:
        print(f"esquire: {exc}", file=sys.stderr)
        return 1
    write_result(table(listing, cut=args.format == "txt"), args.format, sys.stdout, None)
    return 0


def _cancel(service: Service, task_id: str) -> int:
    answer = service.json("POST", f"/_tasks/{task_id}/_cancel")
    failures = answer.get("node_failures") or answer.get("task_failures") or []
    if failures:
        cause = failures[0].get("caused_by", failures[0])
        print(f"esquire: {cause.get('reason') or orjson.dumps(cause).decode()}", file=sys.stderr)
        return 1
    print(f"cancelled {task_id}", file=sys.stderr)
    return 0
